"""Driving `pullthrough` commands against the sandbox as a user would, and checking their --json documents.

`Terminal.run(...)` is `main()` with the process's streams replaced by StringIO: stdout, stderr and the exit code are
what a shell would see. `AwsCalls` records every AWS operation the library's clients make (botocore's
before-parameter-build event on the default session, as test_reconcile_rules.py does), so a test can prove a command
wrote nothing.
"""

from __future__ import annotations

import io as std_io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jsonschema

from pullthrough import cli
from pullthrough.aws import clients

SCHEMAS = Path(__file__).parents[2] / "docs" / "cli"
# Operations that only read: the service API references' Describe/Get/List/BatchGet/Query/Scan families, plus
# ValidatePullThroughCacheRule (it asks the upstream, changes nothing) and BatchCheckLayerAvailability (a read).
READ_PREFIXES = ("Describe", "Get", "List", "BatchGet", "Query", "Scan", "Validate", "BatchCheckLayerAvailability")


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def document(self, command: str) -> dict[str, Any]:
        """stdout as the command's one JSON document, validated against its published schema."""
        document = json.loads(self.out)
        schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
        assert document["schema"] == f"pullthrough/{command}/v1"
        assert document["exit_code"] == self.code
        return document


def run(*args: str, progress: bool = False) -> Ran:
    out, err = std_io.StringIO(), std_io.StringIO()
    code = cli.main(list(args), cli.Io(stdin=std_io.StringIO(), stdout=out, stderr=err, show_progress=progress))
    return Ran(code, out.getvalue(), err.getvalue())


@dataclass
class AwsCalls:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def writes(self) -> list[tuple[str, str]]:
        return [(service, name) for service, name in self.calls if not name.startswith(READ_PREFIXES)]


@contextmanager
def recorded() -> Iterator[AwsCalls]:
    """Every AWS call of the library's clients inside the block (they are made anew so the hook reaches them)."""
    seen = AwsCalls()

    def record(model: Any, **_: Any) -> None:
        seen.calls.append((model.service_model.service_name, model.name))

    clients.clear()
    session = boto3._get_default_session()
    session.events.register("before-parameter-build", record)
    try:
        yield seen
    finally:
        session.events.unregister("before-parameter-build", record)
        clients.clear()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a thread of this process, so a child process reaches the same moto state over HTTP.

    ThreadedMotoServer serves moto's backends, the ones mock_aws() fills in this process (moto's "Server mode"
    documentation); the sandbox's moto patches (sandbox/aws/moto_ecr.py) apply to it for the same reason.
    """
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def run_process(*args: str, endpoint: str, cwd: Path) -> Ran:
    """`python -m pullthrough.cli ARGS` in a child process: this environment, AWS pointed at `endpoint`."""
    import os
    import subprocess
    import sys

    import pullthrough

    library = str(Path(pullthrough.__path__[0]).parent)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "PYTHONPATH": os.pathsep.join([library, str(SCHEMAS.parents[1])]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pullthrough.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)
