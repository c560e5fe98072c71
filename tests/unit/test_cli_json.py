"""`--json` of `pullthrough credentials set`: one document on stdout, valid against its schema, never the token."""

from __future__ import annotations

import io as std_io
import json
from pathlib import Path
from typing import Any

import jsonschema

from pullthrough import cli
from tests.unit.test_cli_unit import TOKEN, checks, config, make_io

__all__ = ["checks", "config"]

SCHEMAS = Path(__file__).parents[2] / "docs" / "cli"


def document(io: cli.Io, command: str) -> dict[str, Any]:
    found = json.loads(io.stdout.getvalue())  # type: ignore[attr-defined]
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    jsonschema.validate(found, schema, cls=jsonschema.Draft202012Validator)
    return dict(found)


def test_set_check_only_json_has_the_verdict_and_the_lines_and_no_token(
    config: Path, checks: list[dict[str, Any]]
) -> None:
    io = make_io(stdin=std_io.StringIO(TOKEN + "\n"))
    args = ["credentials", "set", "docker-hub", "--username", "bob", "--check-only", "--json", "--config", str(config)]
    code = cli.main(args, io)
    found = document(io, "credentials-set")
    assert code == 0
    assert found["schema"] == "pullthrough/credentials-set/v1"
    assert (found["rule"], found["secret"], found["stored"], found["exit_code"]) == (
        "docker-hub",
        "ecr-pullthroughcache/docker-hub",
        None,
        0,
    )
    assert (found["check"]["valid"], found["check"]["pulls_remaining"], found["check"]["pulls_limit"]) == (
        True,
        187,
        200,
    )
    assert found["lines"] == [
        "docker-hub: valid (187/200 pulls left per 6h): secret ecr-pullthroughcache/docker-hub: "
        "Docker Hub accepted user 'bob'",
        "--check-only: nothing stored",
    ]
    assert TOKEN not in io.stdout.getvalue() + io.stderr.getvalue()  # type: ignore[attr-defined]


def test_a_refused_token_is_exit_1_with_the_fix_in_the_document(config: Path, checks: list[dict[str, Any]]) -> None:
    io = make_io(stdin=std_io.StringIO("bad\n"))
    code = cli.main(["credentials", "set", "docker-hub", "--username", "bob", "--json", "--config", str(config)], io)
    found = document(io, "credentials-set")
    assert (code, found["exit_code"], found["stored"], found["check"]["valid"]) == (1, 1, None, False)
    assert found["check"]["fix"] == "create a new token"
    assert "nothing stored. Fix: create a new token" in io.stderr.getvalue()  # type: ignore[attr-defined]


def test_set_creates_and_says_so_in_json(config: Path, checks: list[dict[str, Any]], monkeypatch: Any) -> None:
    created: list[str] = []

    def create(name: str, value: str, **kw: Any) -> str:
        created.append(name)
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"

    monkeypatch.setattr("pullthrough.aws.secrets.create", create)
    io = make_io(stdin=std_io.StringIO(TOKEN + "\n"))
    code = cli.main(["credentials", "set", "docker-hub", "--username", "bob", "--json", "--config", str(config)], io)
    found = document(io, "credentials-set")
    assert (code, found["stored"], created) == (0, "created", ["ecr-pullthroughcache/docker-hub"])
    assert any(line.startswith("created secret ecr-pullthroughcache/docker-hub") for line in found["lines"])
