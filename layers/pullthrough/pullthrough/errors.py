"""The library's error hierarchy: one root, messages that name the field, the value and the fix.

Adapters translate upstream (registry) and AWS (botocore) errors into these types at their boundary, so callers
never see a urllib3 or botocore exception, and no message ever carries a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass


class PullthroughError(Exception):
    """Root of every error Pullthrough raises on purpose."""


# --- input -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input document: where, what was found, and what would be valid."""

    location: str  # "config/pullthrough.yaml: rules[2].credentials"
    value: str  # the offending value, shortened; never a secret
    message: str  # what is wrong and what would be valid

    def __str__(self) -> str:
        return f"{self.location}: {self.message} (got {self.value})"


class ConfigError(PullthroughError):
    """The config document is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the Pullthrough config:\n{lines}")


class InvalidReference(PullthroughError, ValueError):
    """An image reference does not follow the distribution reference grammar."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid image reference {text!r}: {reason}")


class EventError(PullthroughError):
    """A Lambda event does not have the shape its handler accepts."""


class SecretError(PullthroughError):
    """A credentials secret is missing, outside the ecr-pullthroughcache/ prefix, or malformed.

    The message names the secret and the fix, never the value.
    """

    def __init__(self, secret: str, message: str) -> None:
        self.secret = secret
        super().__init__(f"secret {secret}: {message}")


# --- registry data plane -------------------------------------------------------------------------------------------


class RegistryError(PullthroughError):
    """A registry call failed; names the registry, the repository and the HTTP status when there was one."""

    reason = "registry_error"

    def __init__(self, registry: str, repository: str | None, message: str, status: int | None = None) -> None:
        self.registry = registry
        self.repository = repository
        self.status = status
        where = f"{registry}/{repository}" if repository else registry
        status_text = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{where}: {message}{status_text}")


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (or demanded some that were not given)."""

    reason = "auth"


class RegistryAccessDenied(RegistryAuthError):
    """The registry knows the credentials but denies their user this repository (403 DENIED with credentials)."""


class RegistryNotFound(RegistryError):
    """The repository, tag or blob does not exist."""

    reason = "not_found"


class RegistryRateLimited(RegistryError):
    """The registry answered 429 and kept answering it after the allowed retries."""

    reason = "rate_limited"

    def __init__(
        self,
        registry: str,
        repository: str | None,
        message: str,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(registry, repository, message, status)


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or answered 5xx after the allowed retries."""

    reason = "upstream_down"


class RegistryTimeout(RegistryError):
    """A registry call took longer than its timeout."""

    reason = "timeout"


class DigestMismatch(RegistryError):
    """Content did not hash to the digest it was fetched by or announced with."""

    reason = "digest_mismatch"


class InvalidManifest(PullthroughError, ValueError):
    """A manifest body is not JSON of a supported media type (OCI or Docker schema 2 image or index)."""

    reason = "invalid_manifest"


# --- AWS control plane ---------------------------------------------------------------------------------------------


class AwsError(PullthroughError):
    """An AWS call failed; names the operation and the resource, and says what to check."""

    def __init__(self, operation: str, resource: str, code: str, message: str) -> None:
        self.operation = operation
        self.resource = resource
        self.code = code
        self.message = message
        super().__init__(f"{operation} on {resource} failed: {code}: {message}")


class AwsNotFound(AwsError):
    """The resource does not exist (rule, template, secret, repository, image)."""


class AwsAlreadyExists(AwsError):
    """The resource already exists (a concurrent run created it first)."""


class AwsAccessDenied(AwsError):
    """IAM or a key policy refused the call."""


class AwsThrottled(AwsError):
    """AWS throttled the call after botocore's own retries."""
