"""warm_images: warm each queued image through ECR; the last job of a run closes it and publishes the report."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough.env import WarmEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind
from pullthrough.warm import worker


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.WARM)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return worker.handle(event, context, WarmEnv.from_env())
