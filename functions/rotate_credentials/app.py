"""rotate_credentials: Secrets Manager's rotation function for ecr-pullthroughcache/* secrets (one step per call)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough.credentials import rotation
from pullthrough.env import RotateEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind


# Run the step Secrets Manager asks for; a refused step raises, so Secrets Manager retries it.
@logger.inject_lambda_context(correlation_id_path="ClientRequestToken", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.CREDENTIALS, raise_again=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return rotation.handle(event, context, RotateEnv.from_env())
