"""report_pull_failures: record the pulls ECR reported failed (its action events, a batch at a time) and report them."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough import pull_failures
from pullthrough.env import PullFailuresEnv
from pullthrough.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pull_failures.handle(event, context, PullFailuresEnv.from_env())
