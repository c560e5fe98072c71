"""The bench's network model: the round trips loopback does not have, put back so figures read as in AWS.

    upstream   every `/v2/` request (and `/cdn/` blob download) the upstream front serves waits `upstream_ms`
               (default 40) before it is served; the token realm waits `token_ms` (default 60: Docker Hub serves
               tokens from another host, auth.docker.io); optionally each connection is capped at `bandwidth`
               bytes per second (sandbox/registries/faults.py, `Network`, applied by the front)
    AWS        every boto3 call the library makes waits `aws_ms` (default 30) before it is sent: a botocore
               `before-call` hook on the library's session (boto3's default session; the bench's own session is not
               delayed), which fires once per API call, before botocore's own retries

The waits are the model's round trips, not synchronisation: nothing waits for anything to happen. Every benchmark
that takes time runs once with the model and once without (`Model.off()`), side by side; counts do not depend on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from sandbox.registries.faults import Network

DEFAULT_UPSTREAM_MS = 40.0
DEFAULT_TOKEN_MS = 60.0
DEFAULT_AWS_MS = 30.0


@dataclass(frozen=True)
class Model:
    """One network model: delays in milliseconds, the per-connection cap in bytes per second (None: no cap)."""

    upstream_ms: float = DEFAULT_UPSTREAM_MS
    token_ms: float = DEFAULT_TOKEN_MS
    aws_ms: float = DEFAULT_AWS_MS
    bandwidth: float | None = None

    @property
    def on(self) -> bool:
        return bool(self.upstream_ms or self.token_ms or self.aws_ms or self.bandwidth)

    def off(self) -> Model:
        return Model(0.0, 0.0, 0.0, None)

    def network(self) -> Network:
        """The upstream front's part of the model."""
        return Network(self.upstream_ms / 1000, self.token_ms / 1000, self.bandwidth)

    def label(self) -> str:
        """How the table names it: "model" (with its numbers in the header) or "loopback"."""
        return "model" if self.on else "loopback"

    def describe(self) -> str:
        if not self.on:
            return "no model (loopback)"
        cap = f", {self.bandwidth / 1024 / 1024:.1f} MiB/s per connection" if self.bandwidth else ""
        return (
            f"upstream {self.upstream_ms:.0f} ms a request, token realm {self.token_ms:.0f} ms, "
            f"AWS {self.aws_ms:.0f} ms a call{cap}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "upstream_ms": self.upstream_ms,
            "token_ms": self.token_ms,
            "aws_ms": self.aws_ms,
            "bandwidth": self.bandwidth,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Model:
        return replace(Model(), **data)


class AwsDelay:
    """A botocore `before-call` hook that waits the model's per-call delay; returns None (the call goes on)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, **_: Any) -> None:
        if self.seconds:
            time.sleep(self.seconds)  # the model's round trip to the AWS API (see the module docstring)


def install(session: Any, delay: AwsDelay) -> None:
    """Register the AWS delay on a boto3 session's events (the library's: boto3.DEFAULT_SESSION)."""
    session.events.register("before-call", delay)


def apply(front: Any, delay: AwsDelay, model: Model) -> None:
    """Set the model on the upstream front and the AWS hook (both read it on every request)."""
    front.network = model.network()
    delay.seconds = model.aws_ms / 1000
