"""moto behind fake credentials: what every test that talks to AWS starts from.

Fake credentials and region in the environment, no profile and no endpoint override (so nothing can leave the
process), the library's cached boto3 clients dropped before and after (they would hold another moto's state), and
moto's `mock_aws` around the block. Works for a function-scoped or a module-scoped fixture alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto import mock_aws

from pullthrough.aws import clients
from sandbox.aws import moto_ecs, moto_secrets


@contextmanager
def fake_aws(region: str, **environment: str) -> Iterator[None]:
    """moto in `region` with fake credentials; `environment` adds variables for the block."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            **environment,
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        clients.clear()
        # Secrets Manager's RotateSecret rule and label moves as AWS documents them (moto diverges: moto_secrets.py)
        moto_secrets.install()
        # ECS's ListTaskDefinitions sorted and paged as AWS documents (moto ignores both: moto_ecs.py)
        moto_ecs.install()
        try:
            with mock_aws():
                yield
        finally:
            clients.clear()
