"""Pull-through cache rules for moto's ECR backend: Create, Describe, Update, Delete, Validate.

Shapes follow the botocore ECR model; behaviour follows the ECR User Guide: one rule per prefix, a `/` assumed after
every prefix, the upstream catalogue of `pullthrough.upstreams` for which upstream needs a secret or a role, secrets
named `ecr-pullthroughcache/...` in the registry's own account and region, 50 rules per registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ecr.exceptions import InvalidParameterException
from moto.ecr.models import ECRBackend
from moto.secretsmanager.models import secretsmanager_backends

from pullthrough import upstreams
from pullthrough.upstreams import Auth, Upstream
from sandbox.aws.moto_ecr_state import (
    LOCK,
    ROOT,
    PullThroughCacheRuleAlreadyExistsException,
    PullThroughCacheRuleNotFoundException,
    QuotaExceededException,
    SecretNotFoundException,
    UnableToAccessSecretException,
    UnsupportedUpstreamRegistryException,
    check_prefix,
    check_registry_id,
    invalid,
    most_specific,
    now,
    page,
    prefix_key,
    state,
)

RULES_PER_REGISTRY = 50  # AWS quota "Pull through cache rules per registry"
CREDENTIAL_ARN_PATTERN = (
    r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$"
)
ROLE_ARN_PATTERN = r"^arn:aws(-[a-z]+)*:iam::([0-9]{12}):role/[\w+=,.@/-]+$"
PREFIX_LENGTH = (2, 30)

# Module-level so the sandbox can fill it before any boto3 call: upstream host -> local base URL.
UPSTREAM_ENDPOINTS: dict[str, str] = {}
# How ValidatePullThroughCacheRule checks a rule whose upstream is another ECR registry (account, region, the rule
# Describe-shaped) -> failure text or None; set by the multi-account sandbox (sandbox/registries/ecr_cross_account.py).
ECR_UPSTREAM_VALIDATOR: list[Callable[[str, str, dict[str, Any]], str | None]] = []


@dataclass
class Rule:
    """One pull-through cache rule as ECR stores it."""

    prefix: str  # as given (a trailing `/` kept)
    registry_id: str
    upstream_registry: str
    upstream_registry_url: str
    credential_arn: str | None
    custom_role_arn: str | None
    upstream_repository_prefix: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return prefix_key(self.prefix)

    def describe(self) -> dict[str, Any]:
        """The PullThroughCacheRule shape of DescribePullThroughCacheRules."""
        shape = {
            "ecrRepositoryPrefix": self.prefix,
            "upstreamRegistryUrl": self.upstream_registry_url,
            "createdAt": self.created_at,
            "registryId": self.registry_id,
            "credentialArn": self.credential_arn,
            "customRoleArn": self.custom_role_arn,
            "upstreamRepositoryPrefix": self.upstream_repository_prefix,
            "upstreamRegistry": self.upstream_registry,
            "updatedAt": self.updated_at,
        }
        return {k: v for k, v in shape.items() if v is not None}

    def subset(self, *names: str) -> dict[str, Any]:
        described = self.describe()
        return {name: described[name] for name in names if name in described}


# --- operations ------------------------------------------------------------------------------------------------------


def create(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """CreatePullThroughCacheRule."""
    registry_id = check_registry_id(ecr, params.get("registryId"))
    prefix = check_prefix("ecrRepositoryPrefix", params.get("ecrRepositoryPrefix"), min_length=2, max_length=30)
    url = params.get("upstreamRegistryUrl")
    if not isinstance(url, str) or not url:
        raise invalid("upstreamRegistryUrl", "must not be empty")
    upstream = _upstream(params.get("upstreamRegistry"), url)
    credential_arn = params.get("credentialArn")
    custom_role_arn = params.get("customRoleArn")
    _check_access(ecr, upstream, url, credential_arn, custom_role_arn)
    upstream_prefix = params.get("upstreamRepositoryPrefix")
    if upstream_prefix is not None:
        _check_upstream_prefix(upstream, prefix, upstream_prefix)
    else:
        # botocore's ECR model, CreatePullThroughCacheRule.upstreamRepositoryPrefix: "When this field isn't specified,
        # Amazon ECR will use the ROOT". It says so for every upstream registry, so every rule created without one
        # reports ROOT (matching any upstream repository), not only ECR to ECR rules.
        upstream_prefix = ROOT

    with LOCK:
        rules = state(ecr).rules
        if prefix_key(prefix) in rules:
            raise PullThroughCacheRuleAlreadyExistsException(
                f"A pull through cache rule with the prefix '{prefix}' already exists in the registry with id "
                f"'{registry_id}'. Update that rule or choose another prefix."
            )
        if len(rules) >= RULES_PER_REGISTRY:
            raise QuotaExceededException(
                f"The registry with id '{registry_id}' already has {RULES_PER_REGISTRY} pull through cache rules, "
                "the quota per registry. Delete a rule that is no longer used or request a quota increase."
            )
        created = now()
        rule = Rule(
            prefix=prefix,
            registry_id=registry_id,
            upstream_registry=upstream.key,
            upstream_registry_url=url,
            credential_arn=credential_arn,
            custom_role_arn=custom_role_arn,
            upstream_repository_prefix=upstream_prefix,
            created_at=created,
            updated_at=created,
        )
        rules[rule.key] = rule
    return rule.subset(
        "ecrRepositoryPrefix",
        "upstreamRegistryUrl",
        "createdAt",
        "registryId",
        "upstreamRegistry",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    )


def _check_access(
    ecr: ECRBackend, upstream: Upstream, url: str, credential_arn: str | None, custom_role_arn: str | None
) -> None:
    """How the rule reaches its upstream: the secret an upstream requires (and only one that takes a secret), the
    role, and an ECR upstream's own checks."""
    if upstream.auth is Auth.SECRET and credential_arn is None:
        raise invalid(
            "credentialArn",
            f"upstream registry {upstream.key} requires a credentialArn: the ARN of a Secrets Manager secret named "
            "ecr-pullthroughcache/<name> holding username and accessToken",
        )
    if credential_arn is not None:
        _check_takes_secret(upstream)
        check_secret(ecr, credential_arn)
    if custom_role_arn is not None:
        _check_role(ecr, upstream, custom_role_arn)
    if upstream.auth is Auth.IAM_ROLE:
        _check_ecr_upstream(ecr, url, custom_role_arn)


def describe(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """DescribePullThroughCacheRules: all rules or the named ones, a page at a time."""
    check_registry_id(ecr, params.get("registryId"))
    wanted = params.get("ecrRepositoryPrefixes")
    with LOCK:
        rules = list(state(ecr).rules.values())
        if wanted is not None:
            keys = [prefix_key(check_prefix("ecrRepositoryPrefixes", p, min_length=2, max_length=30)) for p in wanted]
            for key in keys:
                get(ecr, key)  # a named prefix without a rule is an error, as in AWS
            rules = [r for r in rules if r.key in keys]
    chunk, token = page(rules, lambda r: r.key, params.get("maxResults"), params.get("nextToken"))
    result: dict[str, Any] = {"pullThroughCacheRules": [r.describe() for r in chunk]}
    if token:
        result["nextToken"] = token
    return result


def update(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """UpdatePullThroughCacheRule: a new credentialArn and/or customRoleArn."""
    check_registry_id(ecr, params.get("registryId"))
    prefix = check_prefix("ecrRepositoryPrefix", params.get("ecrRepositoryPrefix"), min_length=2, max_length=30)
    credential_arn = params.get("credentialArn")
    custom_role_arn = params.get("customRoleArn")
    if credential_arn is None and custom_role_arn is None:
        # AWS's own message for this case
        raise InvalidParameterException(
            "Invalid input: Please set either credential arn or role arn to update the credentials"
        )
    with LOCK:
        rule = get(ecr, prefix_key(prefix))
        upstream = upstreams.get(rule.upstream_registry)
        if credential_arn is not None:
            _check_takes_secret(upstream)
            check_secret(ecr, credential_arn)
        if custom_role_arn is not None:
            _check_role(ecr, upstream, custom_role_arn)
        if credential_arn is not None:
            rule.credential_arn = credential_arn
        if custom_role_arn is not None:
            rule.custom_role_arn = custom_role_arn
        rule.updated_at = now()
    return rule.subset(
        "ecrRepositoryPrefix", "registryId", "updatedAt", "credentialArn", "customRoleArn", "upstreamRepositoryPrefix"
    )


def delete(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """DeletePullThroughCacheRule; the cache repositories it created stay, as in AWS."""
    check_registry_id(ecr, params.get("registryId"))
    prefix = check_prefix("ecrRepositoryPrefix", params.get("ecrRepositoryPrefix"), min_length=2, max_length=30)
    with LOCK:
        rule = get(ecr, prefix_key(prefix))
        del state(ecr).rules[rule.key]
    return rule.subset(
        "ecrRepositoryPrefix",
        "upstreamRegistryUrl",
        "createdAt",
        "registryId",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    )


def validate(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """ValidatePullThroughCacheRule: reach the upstream and authenticate with the secret's AWSCURRENT value."""
    check_registry_id(ecr, params.get("registryId"))
    prefix = check_prefix("ecrRepositoryPrefix", params.get("ecrRepositoryPrefix"), min_length=2, max_length=30)
    with LOCK:
        rule = get(ecr, prefix_key(prefix))
    if rule.upstream_registry == "ecr" and ECR_UPSTREAM_VALIDATOR:
        failure = ECR_UPSTREAM_VALIDATOR[-1](ecr.account_id, ecr.region_name, rule.describe())
    else:
        failure = _check_upstream(ecr, rule)
    result = rule.subset(
        "ecrRepositoryPrefix",
        "registryId",
        "upstreamRegistryUrl",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    )
    result["isValid"] = failure is None
    if failure is not None:
        result["failure"] = failure
    return result


def get(ecr: ECRBackend, key: str) -> Rule:
    """The rule of a normalised prefix, or PullThroughCacheRuleNotFoundException."""
    rule: Rule | None = state(ecr).rules.get(key)
    if rule is None:
        raise PullThroughCacheRuleNotFoundException(
            f"The pull through cache rule with the prefix '{key}' does not exist in the registry with id "
            f"'{ecr.account_id}'. Specify a valid pull through cache rule and try again."
        )
    return rule


def find(ecr: ECRBackend, repository_name: str) -> Rule | None:
    """The rule a repository belongs to: the longest prefix matching whole leading components, else ROOT's."""
    with LOCK:
        rules = state(ecr).rules
        key = most_specific(list(rules), repository_name)
        return rules[key] if key is not None else None


# --- secrets ---------------------------------------------------------------------------------------------------------


class SecretProblem(Exception):
    """Why a rule's secret cannot give credentials; the message names the secret, never its value."""


def check_secret(ecr: ECRBackend, arn: object) -> None:
    """A credentialArn ECR can use: the model's pattern, the registry's account and region, an existing secret."""
    if not isinstance(arn, str) or not re.fullmatch(CREDENTIAL_ARN_PATTERN, arn) or len(arn) < 50:
        raise invalid("credentialArn", f"must satisfy regular expression '{CREDENTIAL_ARN_PATTERN}'")
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[5] != "secret":
        raise invalid("credentialArn", "must be arn:aws:secretsmanager:<region>:<account>:secret:<name>")
    region, account = parts[3], parts[4]
    if (account, region) != (ecr.account_id, ecr.region_name):
        raise UnableToAccessSecretException(
            f"The secret '{arn}' is unable to be accessed: it is in account {account} and region {region}, but "
            f"the registry is in account {ecr.account_id} and region {ecr.region_name}. Create the secret there."
        )
    secret = secretsmanager_backends[account][region].secrets.get(arn)
    if secret is None:
        raise SecretNotFoundException(
            f"The secret '{arn}' specified in the pull through cache rule was not found. Create the secret or "
            "update the pull through cache rule with a valid secret ARN and try again."
        )
    if secret.is_deleted():
        raise UnableToAccessSecretException(
            f"The secret '{arn}' is unable to be accessed: it is scheduled for deletion. Restore it or use another."
        )


def read_credentials(account_id: str, region: str, arn: str) -> tuple[str, str]:
    """The username and accessToken of the secret's AWSCURRENT version, or SecretProblem saying why not.

    The stage is named explicitly: moto's GetSecretValue without one can return a version that lost AWSCURRENT.
    """
    backend = secretsmanager_backends[account_id][region]
    if backend.secrets.get(arn) is None:
        raise SecretProblem(f"The secret {arn} was not found in Secrets Manager.")
    try:
        value = backend.get_secret_value(arn, None, "AWSCURRENT")  # type: ignore[arg-type]
    except JsonRESTError as exc:
        raise SecretProblem(f"Unable to read the AWSCURRENT value of secret {arn} ({exc.error_type}).") from None
    try:
        data = json.loads(value.get("SecretString") or "")
        username, token = data["username"], data["accessToken"]
    except (ValueError, KeyError, TypeError):
        username = token = None
    if not (isinstance(username, str) and username and isinstance(token, str) and token):
        raise SecretProblem(
            f"The AWSCURRENT value of secret {arn} is not a JSON object with the string fields username and "
            "accessToken. Put a value of that form and try again."
        )
    return username, token


# --- checks ----------------------------------------------------------------------------------------------------------


def _upstream(key: object, url: str) -> Upstream:
    if key is None:
        for upstream in upstreams.CATALOGUE.values():
            if upstream.matches_url(url):
                return upstream
        raise UnsupportedUpstreamRegistryException(
            f"The upstream registry URL '{url}' isn't a supported upstream registry. Supported: "
            + ", ".join(u.example_url for u in upstreams.CATALOGUE.values())
            + "."
        )
    if not isinstance(key, str) or key not in upstreams.CATALOGUE:
        raise invalid("upstreamRegistry", f"Member must satisfy enum value set: [{', '.join(upstreams.CATALOGUE)}]")
    upstream = upstreams.CATALOGUE[key]
    if not upstream.matches_url(url):
        raise UnsupportedUpstreamRegistryException(
            f"The upstream registry URL '{url}' isn't supported for the upstream registry '{key}'. "
            f"Use a URL of the form {upstream.example_url}."
        )
    return upstream


def _check_takes_secret(upstream: Upstream) -> None:
    if upstream.auth is not Auth.SECRET:
        raise invalid(
            "credentialArn",
            f"upstream registry {upstream.key} does not authenticate with a secret; remove credentialArn",
        )


def _check_role(ecr: ECRBackend, upstream: Upstream, role_arn: object) -> None:
    if upstream.auth is not Auth.IAM_ROLE:
        raise invalid("customRoleArn", f"a custom role is only used with the ecr upstream registry, not {upstream.key}")
    match = re.fullmatch(ROLE_ARN_PATTERN, role_arn) if isinstance(role_arn, str) else None
    if match is None:
        raise invalid("customRoleArn", "must be an IAM role ARN: arn:aws:iam::<account>:role/<name>")
    if match.group(2) != ecr.account_id:
        raise invalid("customRoleArn", f"the role must be in the registry's account {ecr.account_id}")


def _check_ecr_upstream(ecr: ECRBackend, url: str, role_arn: object) -> None:
    account, _, rest = url.partition(".dkr.ecr.")
    region = rest.split(".amazonaws.com", 1)[0]
    if (account, region) == (ecr.account_id, ecr.region_name):
        raise invalid("upstreamRegistryUrl", "the upstream registry cannot be the registry the rule is created in")
    if account != ecr.account_id and role_arn is None:
        raise invalid(
            "customRoleArn",
            f"a customRoleArn is required when the upstream ECR registry {account} is in another account",
        )


def _check_upstream_prefix(upstream: Upstream, prefix: str, upstream_prefix: object) -> None:
    if upstream.auth is not Auth.IAM_ROLE:
        raise invalid("upstreamRepositoryPrefix", "is only supported for the ecr upstream registry")
    if prefix_key(prefix) == ROOT and upstream_prefix != ROOT:
        raise invalid("upstreamRepositoryPrefix", "can only be set when ecrRepositoryPrefix is not ROOT")
    check_prefix("upstreamRepositoryPrefix", upstream_prefix, min_length=2, max_length=30)


UNREACHABLE = (
    "Unable to connect to upstream registry {url}: {detail}. Verify the upstream registry URL and that the "
    "registry is reachable, then try again."
)
AUTH_FAILED = (
    "Unable to authenticate to upstream registry {url} with the credentials in secret {arn}. Verify that the "
    "secret's username and accessToken are valid for the upstream registry and try again."
)


def _check_upstream(ecr: ECRBackend, rule: Rule) -> str | None:
    """None when the upstream answers and accepts the rule's credentials, else the failure text."""
    url = rule.upstream_registry_url
    base_url = UPSTREAM_ENDPOINTS.get(url)
    if base_url is None:
        return UNREACHABLE.format(url=url, detail="the host is not reachable from the sandbox")
    credentials: tuple[str, str] | None = None
    if rule.credential_arn is not None:
        try:
            credentials = read_credentials(ecr.account_id, ecr.region_name, rule.credential_arn)
        except SecretProblem as problem:
            return str(problem)

    # Imported here: the sandbox must load (and moto be extended) even while the registry client is being built.
    from pullthrough.errors import RegistryAuthError, RegistryError
    from pullthrough.registry.auth import Credentials
    from pullthrough.registry.client import RegistryClient

    try:
        with RegistryClient(
            base_url,
            name=url,
            credentials=Credentials(*credentials) if credentials else None,
            timeout=5.0,
            retries=1,
        ) as client:
            client.authenticate()  # anonymous (a public upstream's token realm) when the rule has no secret
    except RegistryAuthError:
        if rule.credential_arn is None:
            return f"Upstream registry {url} demands credentials, but the pull through cache rule has no credentialArn."
        return AUTH_FAILED.format(url=url, arn=rule.credential_arn)
    except RegistryError as exc:
        return UNREACHABLE.format(url=url, detail=exc.reason + (f", HTTP {exc.status}" if exc.status else ""))
    return None
