"""plan_warming: on a schedule, after rules are reconciled, or when invoked by hand, plan a warm run and queue it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough.env import PlanEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind
from pullthrough.warm import planner


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.WARM)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return planner.handle(event, context, PlanEnv.from_env())
