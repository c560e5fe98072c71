"""Signed, expiring URLs for a blob: what S3 pre-signs for ECR's layers and what Docker Hub's CDN redirects hand out.

The sandbox signs `repository|digest|expires` with its own key (HMAC-SHA256); only the query's parameter names
differ between the two stand-ins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs


class UrlSigner:
    """Signs and checks the query part of a blob's URL, valid for `lifetime` seconds."""

    def __init__(self, lifetime: int, expires: str, signature: str) -> None:
        self.lifetime = lifetime
        self._names = (expires, signature)
        self._key = secrets.token_bytes(16)

    def query(self, repository: str, digest: str) -> str:
        """`<expires>=...&<signature>=...` for a URL valid from now."""
        expires = int(time.time()) + self.lifetime
        return f"{self._names[0]}={expires}&{self._names[1]}={self._sign(repository, digest, expires)}"

    def holds(self, repository: str, digest: str, query: str) -> bool:
        """Whether the query's signature is this signer's for the blob and has not expired."""
        found = parse_qs(query)
        try:
            expires = int(found[self._names[0]][0])
            signature = found[self._names[1]][0]
        except (KeyError, IndexError, ValueError):
            return False
        return expires >= time.time() and hmac.compare_digest(signature, self._sign(repository, digest, expires))

    def _sign(self, repository: str, digest: str, expires: int) -> str:
        return hmac.new(self._key, f"{repository}|{digest}|{expires}".encode(), hashlib.sha256).hexdigest()
