"""gather_reports (the organisation's hub): record each member's warm report once per cycle, report each cycle once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough.env import GatherEnv
from pullthrough.observability import logger, metrics, tracer
from pullthrough.org import gather


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return gather.handle(event, context, GatherEnv.from_env())
