"""reconcile_rules: keep the account's pull-through cache rules and templates as the config says, validate, report.

It reconciles on a deploy, the schedule, a drift event or a manual call ({"dryRun": true} writes nothing).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough import rules
from pullthrough.env import ReconcileEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.reporting.rejection import rejects_malformed_events
from pullthrough.reporting.vocabulary import Kind


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@rejects_malformed_events(Kind.RULES)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return rules.handle(event, context, ReconcileEnv.from_env())
