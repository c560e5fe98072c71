"""check_credentials: validate an ecr-pullthroughcache/* secret upstream and in ECR whenever it changes, and daily."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough.credentials import handler
from pullthrough.env import CheckEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind


# Check what the event names (every secret on the schedule) and report: loud on trouble, one line if fine.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.CREDENTIALS)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handler.handle(event, context, CheckEnv.from_env())
