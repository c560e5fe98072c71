"""Upstream credentials: prove a secret's username and access token against the upstream before pulls depend on it.

`check_secret` goes through what ECR itself would trip over, in order: the secret exists in the registry's account
and region, its name starts with `ecr-pullthroughcache/`, its value is JSON with `username` and `accessToken`; then
it authenticates upstream through the registry client. The result names the secret and says why and what to do; it
never carries the token.

`handle` is the check_credentials function: on a Secrets Manager change (CloudTrail) it checks the changed secret,
on the daily schedule every secret, re-validates the ECR rules that use it, warns ahead of a known expiry, and
reports (loud on trouble, one line when all is well). `rotation` builds on the same pieces.

The package, one concern a module (this file only names the public API):
- verdict.py: `CredentialCheck`, the verdict on one secret, and its report line;
- value.py: a secret's name and its JSON value (read, refused, written);
- upstream.py: `check_credentials`, a username and token proved against the upstream;
- check.py: `check_secret` / `check_version`, a stored secret checked as ECR would read it, then upstream;
- usage.py: which rules use a secret (`SecretUse`, `Target`), from the config, ECR and the secret's tags;
- report.py: re-validation of ECR's rules, expiry warnings, the credentials report;
- events.py: the change events check_credentials takes; handler.py: its run;
- rotation/: Secrets Manager's four-step rotation.
"""

from pullthrough.credentials.check import check_secret, check_version
from pullthrough.credentials.events import (
    CLOUDTRAIL_CALL,
    CLOUDTRAIL_SERVICE,
    ROTATION_OUTCOMES,
    SCHEDULED,
    ChangeEvent,
    parse_change_event,
)
from pullthrough.credentials.handler import CheckResult, check_use, handle
from pullthrough.credentials.report import ReportRun, expiry_item, publish, revalidate
from pullthrough.credentials.upstream import (
    CHECK_RETRIES,
    CHECK_TIMEOUT,
    DOCKER_HUB,
    RATE_LIMIT_REPOSITORY,
    RATE_LIMIT_TAG,
    ClientFactory,
    check_credentials,
)
from pullthrough.credentials.usage import (
    ADMIN_SECRET_TAG,
    EXPIRES_TAG,
    ORGANIZATION_TAG,
    ROTATION_TAG,
    SecretUse,
    Target,
    config_rules,
    distinct,
    ecr_rules,
    load_config,
    secret_use,
)
from pullthrough.credentials.value import credentials_value, parse_value, refuse_swapped, secret_name
from pullthrough.credentials.verdict import CredentialCheck, Status, set_command

__all__ = [
    "ADMIN_SECRET_TAG",
    "CHECK_RETRIES",
    "CHECK_TIMEOUT",
    "CLOUDTRAIL_CALL",
    "CLOUDTRAIL_SERVICE",
    "DOCKER_HUB",
    "EXPIRES_TAG",
    "ORGANIZATION_TAG",
    "RATE_LIMIT_REPOSITORY",
    "RATE_LIMIT_TAG",
    "ROTATION_OUTCOMES",
    "ROTATION_TAG",
    "SCHEDULED",
    "ChangeEvent",
    "CheckResult",
    "ClientFactory",
    "CredentialCheck",
    "ReportRun",
    "SecretUse",
    "Status",
    "Target",
    "check_credentials",
    "check_secret",
    "check_use",
    "check_version",
    "config_rules",
    "credentials_value",
    "distinct",
    "ecr_rules",
    "expiry_item",
    "handle",
    "load_config",
    "parse_change_event",
    "parse_value",
    "publish",
    "refuse_swapped",
    "revalidate",
    "secret_name",
    "secret_use",
    "set_command",
]
