"""Prove a username and access token against the upstream: the registry client's answer as a verdict.

Docker Hub gets a Bearer token for a pull scope from its realm with the credentials (as a pull would), then a HEAD
on a manifest, which Docker Hub does not count as a pull, to read `ratelimit-limit` / `ratelimit-remaining`. Other
upstreams are asked what they want through `/v2/`'s WWW-Authenticate. Separate from check.py, which reads the
value out of Secrets Manager first: the CLI proves a token here before anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pullthrough import redaction
from pullthrough.credentials.usage import Target
from pullthrough.credentials.verdict import CredentialCheck, Status, set_command
from pullthrough.env import Settings
from pullthrough.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
)
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.registry.headers import RateLimit
from pullthrough.upstreams import Upstream

# Docker's documented way to read the pull budget: a HEAD on this manifest costs no pull.
RATE_LIMIT_REPOSITORY = "ratelimitpreview/test"
RATE_LIMIT_TAG = "latest"
DOCKER_HUB = "docker-hub"
CHECK_TIMEOUT = 10.0  # seconds per upstream call: well inside a Lambda's minute, long enough for a slow realm
CHECK_RETRIES = 1

ClientFactory = Callable[..., RegistryClient]

# The seam tests replace (a fake client reaches every branch of the verdict without a network).
client_factory: ClientFactory = RegistryClient


@dataclass(frozen=True)
class _Asked:
    """One check in progress: whose credentials, where, and how to word the verdict (never with the token)."""

    secret: str
    credentials: Credentials
    target: Target
    stage: str

    @property
    def title(self) -> str:
        return f"{self.target.upstream.title} ({self.target.url})"

    def verdict(
        self, status: Status, message: str, fix: str, code: str | None, rate: RateLimit | None
    ) -> CredentialCheck:
        username = self.credentials.username
        return CredentialCheck(
            secret=self.secret,
            status=status,
            message=_scrub(f"secret {self.secret}: {message}", self.credentials),
            fix=fix,
            rate_limit=rate,
            reason_code=code,
            username=None if redaction.looks_like_token(username) else username,
            stage=self.stage,
        )


def check_credentials(
    secret: str,
    credentials: Credentials,
    target: Target,
    settings: Settings,
    *,
    stage: str = "AWSCURRENT",
    timeout: float = CHECK_TIMEOUT,
) -> CredentialCheck:
    """Prove a username and token against the upstream: valid, invalid (with the upstream's reason) or unreachable."""
    asked = _Asked(secret, credentials, target, stage)
    client = client_factory(
        settings.upstream_url(target.url),
        name=target.url,
        credentials=credentials,
        timeout=timeout,
        retries=CHECK_RETRIES,
        max_wait=timeout,
    )
    with client:
        try:
            if target.upstream.key == DOCKER_HUB:
                client.authenticate(RATE_LIMIT_REPOSITORY)
            elif client.ping().scheme == "none":
                who = redaction.user_label(credentials.username)
                message = f"{asked.title} asks for no credentials, so {who} was not put to the test"
                return asked.verdict("valid", message, "nothing to do", "no_auth", None)
            else:
                client.authenticate()
        except RegistryError as exc:
            return _refused(asked, exc, client.rate_limit)
        rate = _rate_limit(client) if target.upstream.key == DOCKER_HUB else client.rate_limit
    who = redaction.user_label(credentials.username)
    return asked.verdict("valid", f"{asked.title} accepted {who}{_budget_text(rate)}", "nothing to do", None, rate)


def _refused(asked: _Asked, exc: RegistryError, rate: RateLimit | None) -> CredentialCheck:
    """The verdict on a registry error: refused credentials are invalid; anything else leaves validity unknown."""
    title = asked.title
    if isinstance(exc, RegistryAuthError):
        fix = _invalid_fix(asked.target.upstream, asked.target.rule)
        return asked.verdict("invalid", f"{title}: {_upstream_reason(exc)}", fix, exc.reason, rate)
    if isinstance(exc, RegistryRateLimited):
        return asked.verdict(
            "unreachable",
            f"{title} rate-limited the check, so validity is unknown: {exc}",
            "retry after the upstream's rate-limit window; nothing needs changing yet",
            exc.reason,
            rate,
        )
    if isinstance(exc, RegistryUnavailable | RegistryTimeout):
        return asked.verdict(
            "unreachable",
            f"{title} could not be reached, so validity is unknown: {exc}",
            "retry later; if it persists, check the upstream's status page and the network path to it",
            exc.reason,
            None,
        )
    return asked.verdict(
        "unreachable",
        f"{title} answered the check unexpectedly, so validity is unknown: {exc}",
        "check the rule's upstream URL in config/pullthrough.yaml and retry",
        exc.reason,
        None,
    )


def _upstream_reason(exc: RegistryError) -> str:
    """The registry error without its `registry/repository: ` head: the repository is only the check's probe."""
    text = str(exc)
    for head in (f"{exc.registry}/{exc.repository}: ", f"{exc.registry}: "):
        if text.startswith(head):
            return text[len(head) :]
    return text


def _rate_limit(client: RegistryClient) -> RateLimit | None:
    """The pull budget from a HEAD (free on Docker Hub); None when the upstream does not say or the HEAD fails."""
    try:
        head = client.head_manifest(RATE_LIMIT_REPOSITORY, RATE_LIMIT_TAG)
    except RegistryNotFound:
        return client.rate_limit  # the answer still carries the headers; the image itself is not needed
    except RegistryError:
        return client.rate_limit
    return head.rate_limit or client.rate_limit


def _budget_text(rate: RateLimit | None) -> str:
    if rate is None or rate.remaining is None:
        return ""
    window = f" per {rate.window_seconds // 3600}h" if rate.window_seconds and rate.window_seconds >= 3600 else ""
    limit = f" of {rate.limit:,}{window}" if rate.limit is not None else ""
    return f"; {rate.remaining:,}{limit} pulls left"


def _invalid_fix(upstream: Upstream, rule: str | None) -> str:
    where = {
        DOCKER_HUB: "on Docker Hub (Account settings > Personal access tokens; Public Repo Read-only is enough)",
        "github-container-registry": "on GitHub (a classic personal access token with read:packages)",
        "gitlab-container-registry": "on GitLab (a token with read_registry)",
        "azure-container-registry": "in Azure (a token or service principal with pull access)",
        "chainguard": "in Chainguard (a pull token)",
    }.get(upstream.key, f"for {upstream.title}")
    return f"create a new access token {where} and store it with {set_command(rule)}"


def _scrub(text: str, credentials: Credentials) -> str:
    # Upstream texts are passed through; a registry echoing the token back must not carry it any further.
    return text.replace(credentials.password, "***") if credentials.password else text
