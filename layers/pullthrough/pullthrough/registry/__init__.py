"""The OCI distribution client: the one place Pullthrough speaks HTTP to a registry.

Upstream credential checks and ECR warming both use it, with different credentials. It discovers how a registry
authenticates from `/v2/` (none, Basic, or a Bearer token realm as Docker Hub does), asks for manifests with every
media type ECR pull-through cache serves, streams blobs without keeping them, and turns every failure into a
`pullthrough.errors.RegistryError` that names the registry, the repository and the HTTP status, never a secret.

One concern per module, as go-containerregistry lays out its transport: `headers` (WWW-Authenticate, rate limits,
Retry-After, Link), `transport` (send, retry, redirects, connection errors), `auth` (credentials, the challenge, the
token cache), `failures` (an answer as the error it stands for), `client` (the operations), `manifests` (the
documents), `dockerhub` (the Docker Hub API, for rotations). This package's public names are re-exported here.
"""

from __future__ import annotations

from pullthrough.registry import manifests
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import MAX_MANIFEST_BYTES, Manifest, ManifestHead, RegistryClient
from pullthrough.registry.headers import (
    Challenge,
    RateLimit,
    Scheme,
    choose_challenge,
    parse_next_link,
    parse_rate_limit,
    parse_retry_after,
    parse_www_authenticate,
)
from pullthrough.registry.transport import Kind, Method, backoff_delay

__all__ = [
    "MAX_MANIFEST_BYTES",
    "Challenge",
    "Credentials",
    "Kind",
    "Manifest",
    "ManifestHead",
    "Method",
    "RateLimit",
    "RegistryClient",
    "Scheme",
    "backoff_delay",
    "choose_challenge",
    "manifests",
    "parse_next_link",
    "parse_rate_limit",
    "parse_retry_after",
    "parse_www_authenticate",
]
