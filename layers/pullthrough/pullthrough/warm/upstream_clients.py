"""Clients for a rule's upstream registry, with the rule's credentials: one for a job's diagnosis (a HEAD that says
why ECR could not import), and ones kept across a Lambda container's invocations for the planner's HEADs.

Separate from the worker: the planner, the worker and the CLI's survey all reach an upstream the same way.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pullthrough.aws import secrets
from pullthrough.credentials.value import parse_value
from pullthrough.env import Settings
from pullthrough.errors import AwsError, SecretError
from pullthrough.registry.client import RegistryClient
from pullthrough.upstreams import CATALOGUE, Auth

if TYPE_CHECKING:  # warm_images reaches an upstream from its job alone, and never imports the config
    from pullthrough.config import Rule

# Seconds one upstream registry call may take before it counts as a timeout (HEADs and tag lists).
UPSTREAM_TIMEOUT = 10.0


def upstream_client(
    rule: Rule, settings: Settings, *, timeout: float | None = None, connections: int = 8
) -> RegistryClient | None:
    """A client for the rule's upstream with the rule's credentials; None where only ECR can reach it (IAM roles).

    `connections`: as many as threads share the client at once (the planner's workers).
    """
    return registry_client(
        rule.upstream, rule.upstream_url, rule.secret_name, settings, timeout=timeout, connections=connections
    )


def registry_client(
    upstream: str,
    upstream_url: str | None,
    secret_name: str | None,
    settings: Settings,
    *,
    timeout: float | None = None,
    connections: int = 8,
) -> RegistryClient | None:
    """A client for an upstream (its catalogue key, URL and credentials secret, as a rule or a warm job names them);
    None where only ECR can reach it (IAM roles) or no URL is known. `upstream_url` None: the catalogue's."""
    entry = CATALOGUE.get(upstream)
    if entry is not None and entry.auth is Auth.IAM_ROLE:
        return None
    url = upstream_url or (entry.url if entry is not None else None)
    if not url:
        return None
    credentials = None
    if secret_name:
        try:
            value = secrets.get_value(secret_name, region=settings.region)
        except AwsError as exc:
            raise SecretError(
                secret_name, f"cannot be read ({exc.code}); check it exists and the role may read it"
            ) from exc
        credentials = parse_value(secret_name, value)
    return RegistryClient(
        settings.upstream_url(url),
        name=url,
        credentials=credentials,
        timeout=UPSTREAM_TIMEOUT if timeout is None else timeout,
        connections=connections,
    )


# Upstream clients kept between invocations of one Lambda container, by rule prefix (see kept_upstream_client).
_KEPT: dict[str, RegistryClient] = {}
_KEPT_LOCK = threading.Lock()


def kept_upstream_client(rule: Rule, settings: Settings, *, connections: int = 8) -> RegistryClient | None:
    """upstream_client, kept for this container's next invocations: its connections and tokens are reused.

    The secret is read on every call; another value (a rotation), endpoint or pool size makes a new client. A
    token is reused only until it expires (Docker Hub's live 5 minutes); one refused anyway is asked for again.
    The caller must not close it.
    """
    fresh = upstream_client(rule, settings, connections=connections)
    if fresh is None:
        return None
    with _KEPT_LOCK:
        kept = _KEPT.get(rule.prefix)
        if kept is not None and _same_client(kept, fresh):
            fresh.close()
            return kept
        _KEPT[rule.prefix] = fresh
    if kept is not None:
        kept.close()
    return fresh


def forget_kept_clients() -> None:
    """Close and drop the kept upstream clients (a new sandbox, or a test that changes an upstream's tokens)."""
    with _KEPT_LOCK:
        clients = list(_KEPT.values())
        _KEPT.clear()
    for client in clients:
        client.close()


def _same_client(a: RegistryClient, b: RegistryClient) -> bool:
    return (a.base_url, a.name, a.credentials, a.connections, a.timeout) == (
        b.base_url,
        b.name,
        b.credentials,
        b.connections,
        b.timeout,
    )


__all__ = ["UPSTREAM_TIMEOUT", "forget_kept_clients", "kept_upstream_client", "registry_client", "upstream_client"]
