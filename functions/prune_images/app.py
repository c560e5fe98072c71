"""prune_images: on prune.schedule (or invoked by hand), delete the cached images nobody pulled for a while, report."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough import prune
from pullthrough.env import PruneEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.PRUNE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return prune.handle(event, context, PruneEnv.from_env())
