"""A registry's failed answer turned into the `pullthrough.errors.RegistryError` it stands for.

Separate from the transport because which error an answer is depends on who asked (anonymous or a named user) and
on what was asked for, and because every message is built here, in one place that names the registry, the
repository and the HTTP status but never a secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import urllib3
from urllib3.exceptions import HTTPError

from pullthrough import redaction
from pullthrough.errors import (
    RegistryAccessDenied,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryUnavailable,
)
from pullthrough.registry.headers import parse_retry_after

if TYPE_CHECKING:
    from pullthrough.registry.auth import Credentials


@dataclass(frozen=True)
class Failures:
    """The errors of one registry's answers, for one set of credentials (None: anonymous)."""

    registry: str
    credentials: Credentials | None

    def fail(
        self,
        response: urllib3.BaseHTTPResponse,
        repository: str | None,
        what: str,
        *,
        streamed: bool = False,
        resource: bool = True,
    ) -> NoReturn:
        """Raise the error an answer stands for. `resource`: False for /v2/, which needs no permission of its own.

        401 and 403 are authentication errors: the distribution spec's UNAUTHORIZED (401, "authentication required")
        and DENIED (403, "requested access to the resource is denied"). Which party is at fault differs:
        - without credentials, either means the registry wants some: add them to the rule;
        - with credentials, a 401, or a 403 on /v2/ (which every authenticated client may read), refuses the
          credentials themselves (GHCR answers 403 DENIED to a bad or expired token);
        - with credentials, a 403 on a repository is `RegistryAccessDenied`: the user is known but may not read it.
        """
        status = response.status
        detail = self.detail(response, streamed=streamed)
        if status in (401, 403):
            self._refused(status, repository, f"{what}: ", detail, resource=resource)
        if status == 404:
            raise RegistryNotFound(self.registry, repository, f"{what} not found{detail}", status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            hint = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            raise RegistryRateLimited(
                self.registry,
                repository,
                f"{what}: rate limited, still after retrying{detail}{hint}",
                status,
                retry_after=retry_after,
            )
        if status >= 500:
            raise RegistryUnavailable(
                self.registry, repository, f"{what}: server error, still after retrying{detail}", status
            )
        raise RegistryError(self.registry, repository, f"{what}: unexpected answer{detail}", status)

    def _refused(self, status: int, repository: str | None, what: str, detail: str, *, resource: bool) -> NoReturn:
        """A 401 or 403: who is at fault (see `fail`). `what` ends in ": "."""
        if self.credentials is None:
            message = f"{what}access denied to anonymous requests{detail}; add credentials to the rule"
            raise RegistryAuthError(self.registry, repository, message, status)
        user = redaction.user_label(self.credentials.username)
        if status == 403 and resource:
            raise RegistryAccessDenied(
                self.registry,
                repository,
                f"{what}{user} is not allowed to read {repository or 'it'}{detail}; give that user read "
                "access, or check the repository name",
                status,
            )
        message = (
            f"{what}the registry refused the credentials of {user}{detail}; check the username and access "
            "token" + (" (Docker Hub also answers so for a missing repository)" if status == 401 else "")
        )
        raise RegistryAuthError(self.registry, repository, message, status)

    def detail(self, response: urllib3.BaseHTTPResponse, *, streamed: bool = False) -> str:
        """The registry's own error codes and messages, shortened, with any credential scrubbed out."""
        try:
            # A streamed error body is read only as far as an error document can reasonably go.
            raw = response.read(8192) if streamed else response.data
        except HTTPError:
            raw = b""
        finally:
            response.release_conn()
        try:
            document = json.loads(raw)
        except ValueError:
            return ""
        text = "; ".join(p for p in _messages(document) if p)[:200]
        if self.credentials is not None and self.credentials.password:
            text = text.replace(self.credentials.password, "***")
        return f" ({text})" if text else ""


def _messages(document: object) -> list[str]:
    """The `errors` of a distribution error document (at most three), then its first free-text field."""
    parts: list[str] = []
    if isinstance(document, dict):
        errors = document.get("errors")
        if isinstance(errors, list):
            for error in errors[:3]:
                if isinstance(error, dict):
                    parts.append(f"{error.get('code', '')}: {error.get('message', '')}".strip(": "))
        for key in ("details", "detail", "error", "message"):
            value = document.get(key)
            if isinstance(value, str) and value:
                parts.append(value)
                break
    return parts
