"""config_facts: CloudFormation's custom resource ConfigFacts, what template.yaml needs from the config.

Answers a Create, Update or Delete of ConfigFacts at its ResponseURL; a bad config fails the deploy with why.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough import facts
from pullthrough.env import ConfigFactsEnv
from pullthrough.observability import logger


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return facts.handle(event, context, ConfigFactsEnv.from_env())
