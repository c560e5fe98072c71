"""The sandbox's token issuer: a self-signed CA with an ES256 key that signs registry Bearer tokens.

distribution's `auth: token` trusts a token whose `x5c` header chains to its `rootcertbundle`; the certificate here
is both the bundle and the chain, as FACTS.md records working with distribution 2.8.2.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

DEFAULT_ISSUER = "sandbox-token-issuer"
DEFAULT_SERVICE = "sandbox-registry"
TOKEN_TTL_SECONDS = 300  # what auth.docker.io hands out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scopes(scopes: Iterable[str]) -> list[dict[str, Any]]:
    """Turn `repository:name:pull,push` scope strings (space-separated allowed) into JWT access entries."""
    access: list[dict[str, Any]] = []
    for text in scopes:
        for scope in text.split():
            # rpartition: a repository name may hold a colon (`localhost:5000/app`), the actions never do.
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if not kind or not name:
                continue
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access


def token_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's claims without verifying it (the sandbox only reads tokens it issued itself)."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


class TokenIssuer:
    """Holds the CA key and certificate; writes the certificate bundle distribution trusts."""

    def __init__(self, workdir: Path, *, issuer: str = DEFAULT_ISSUER, service: str = DEFAULT_SERVICE) -> None:
        self.issuer = issuer
        self.service = service
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pullthrough sandbox token CA")])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.bundle_path = workdir / "token-ca.pem"
        self.bundle_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode("ascii")

    def sign(self, subject: str, access: list[dict[str, Any]], *, ttl: int = TOKEN_TTL_SECONDS) -> str:
        """An ES256 JWT for `subject` granting `access` ([{type, name, actions}]) to this issuer's service."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + ttl,
            "nbf": now - 5,  # tolerate a clock read a moment earlier in the registry
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants the raw 64-byte r||s, not DER
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def auth_config(self, realm: str) -> dict[str, Any]:
        """The `auth: token` section of a distribution config that trusts this issuer."""
        return {
            "token": {
                "realm": realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.bundle_path),
            }
        }
