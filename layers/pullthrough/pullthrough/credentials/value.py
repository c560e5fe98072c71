"""What a credentials secret holds: its name from an ARN, and its JSON value read, refused or written.

The one place that parses a secret's value, so every reader (the check, the CLI, the rotation) refuses the same
mistakes with the same words and registers the values for redaction before anything else can go wrong.
"""

from __future__ import annotations

import json

from pullthrough import redaction
from pullthrough.errors import SecretError
from pullthrough.registry.auth import Credentials

_TOKEN_ALIASES = ("password", "token", "access_token", "accesstoken", "AccessToken", "secret")


def secret_name(secret_id: str) -> str:
    """The name of a secret given by name or ARN (an ARN's name ends in a 6-character suffix Secrets Manager adds)."""
    if not secret_id.startswith("arn:"):
        return secret_id
    name = secret_id.split(":", 6)[-1]
    stem, dash, suffix = name.rpartition("-")
    return stem if dash and len(suffix) == 6 and suffix.isalnum() else name


def parse_value(secret: str, value: str | None) -> Credentials:
    """The Credentials in a secret's value; SecretError (naming the secret and the fix, never the value) if unusable."""
    shape = 'JSON {"username": "<user>", "accessToken": "<token>"}'
    if value is None:
        raise SecretError(secret, f"has no SecretString (binary only); store the value as {shape}")
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretError(
            secret,
            f"its value is not JSON; store it as {shape} (console: Other type of secret, two key/value pairs)",
        ) from None
    if not isinstance(document, dict):
        raise SecretError(secret, f"its value is JSON but not an object; store it as {shape}")
    problems = _problems(document)
    # Masked in every log line from now on, before anything else can go wrong with them (a refused value included).
    redaction.register_document(document)
    if problems:
        raise SecretError(secret, "; ".join(problems) + f"; store the value as {shape}")
    refuse_swapped(secret, document["username"], document["accessToken"])
    return Credentials(username=document["username"], password=document["accessToken"])


def _problems(document: dict[str, object]) -> list[str]:
    """What is wrong with the value's two keys, naming a near miss (`password` for `accessToken`), never a value."""
    problems: list[str] = []
    for key, alternatives in (("username", ("user", "Username", "login")), ("accessToken", _TOKEN_ALIASES)):
        value = document.get(key)
        if key not in document:
            near = [alt for alt in alternatives if alt in document]
            hint = f" (found {near[0]!r}: rename it to {key!r}, the name ECR reads)" if near else ""
            problems.append(f"the key {key!r} is missing{hint}")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"the key {key!r} must be a non-empty string")
        elif value != value.strip():
            problems.append(f"the value of {key!r} has leading or trailing whitespace (a paste accident?)")
    return problems


def refuse_swapped(secret: str, username: str, token: str) -> None:
    """SecretError when the user name has the shape of an access token, or is the token: fields swapped (a common
    paste accident) would otherwise put the token wherever a message names the user. Names neither value."""
    if username == token or redaction.looks_like_token(username):
        raise SecretError(
            secret,
            "the value of 'username' looks like an access token, not a user name (fields swapped, or the token "
            "pasted into both?); put the upstream account's user name in 'username' and the token in 'accessToken'",
        )


def credentials_value(credentials: Credentials) -> str:
    """The secret value ECR reads, as JSON text (for the CLI and rotation to store)."""
    return json.dumps({"username": credentials.username, "accessToken": credentials.password})
