"""The `pullthrough` command (pullthrough/cli/): parsing, reading the token, and what is printed.

No AWS and no upstream here: the check and the secret lookup are replaced, so these tests are about the command.
"""

from __future__ import annotations

import argparse
import io as std_io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pullthrough import cli
from pullthrough.cli import credentials as cli_credentials
from pullthrough.credentials.verdict import CredentialCheck
from pullthrough.registry.headers import RateLimit

TOKEN = "dckr_pat_cli-unit-token-5f4e3d2c1b"


class Terminal(std_io.StringIO):
    """A stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def make_io(stdin: std_io.StringIO | None = None, hidden: str = TOKEN, typed: str = "alice") -> cli.Io:
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return hidden

    def prompt(text: str) -> str:
        prompts.append(text)
        return typed

    io = cli.Io(
        stdin=stdin if stdin is not None else Terminal(),
        stdout=std_io.StringIO(),
        stderr=std_io.StringIO(),
        getpass=getpass,
        prompt=prompt,
    )
    io.prompts = prompts  # type: ignore[attr-defined]
    return io


def output(io: cli.Io) -> str:
    return io.stdout.getvalue() + io.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    document = {
        "version": 1,
        "rules": [
            {"prefix": "docker-hub", "upstream": "docker-hub", "credentials": "ecr-pullthroughcache/docker-hub"},
            {"prefix": "quay", "upstream": "quay"},
        ],
    }
    path = tmp_path / "pullthrough.yaml"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the upstream check: valid unless the token is 'bad'; records what it was given."""
    seen: list[dict[str, Any]] = []

    def check_credentials(secret: str, creds: Any, target: Any, settings: Any, **kw: Any) -> Any:
        seen.append({"secret": secret, "username": creds.username, "token": creds.password, "url": target.url})
        valid = creds.password != "bad"
        return CredentialCheck(
            secret=secret,
            status="valid" if valid else "invalid",
            message=f"secret {secret}: Docker Hub accepted user {creds.username!r}" if valid else "refused",
            fix="nothing to do" if valid else "create a new token",
            rate_limit=RateLimit(200, 187, 21600, creds.username) if valid else None,
        )

    monkeypatch.setattr(cli_credentials, "check_credentials", check_credentials)
    monkeypatch.setattr(cli_credentials, "_existing", lambda name, settings: None)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return seen


def test_parser_has_the_credentials_family_with_set_and_check() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["credentials", "set", "docker-hub", "--username", "bot", "--expires", "2027-01-31"])
    assert (args.command, args.action, args.rule, args.username, str(args.expires)) == (
        "credentials",
        "set",
        "docker-hub",
        "bot",
        "2027-01-31",
    )
    assert parser.parse_args(["credentials", "check"]).rule is None


def test_a_new_command_family_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a family registered the way `pullthrough warm` is
    def add_example_commands(commands: Any) -> None:
        family = commands.add_parser("example", help="an example family")
        family.set_defaults(handler=lambda args, io: 7)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_example_commands])
    # When it is run
    code = cli.main(["example"], make_io())
    # Then its handler ran
    assert code == 7


def test_set_check_only_asks_hidden_and_prints_the_budget_not_the_token(
    config: Path, checks: list[dict[str, Any]]
) -> None:
    # Given a terminal
    io = make_io()
    # When a token is set with --check-only
    code = cli.main(["credentials", "set", "docker-hub", "--config", str(config), "--check-only"], io)
    # Then the user name was asked, the token was asked hidden, tested, reported with its budget, and not shown
    assert code == 0
    assert io.prompts == ["Docker Hub user name: ", "Docker Hub access token for rule docker-hub (input hidden): "]  # type: ignore[attr-defined]
    assert checks == [
        {
            "secret": "ecr-pullthroughcache/docker-hub",
            "username": "alice",
            "token": TOKEN,
            "url": "registry-1.docker.io",
        }
    ]
    text = output(io)
    assert "docker-hub: valid (187/200 pulls left per 6h)" in text
    assert "nothing stored" in text
    assert TOKEN not in text


def test_set_reads_the_token_from_stdin_when_piped(config: Path, checks: list[dict[str, Any]]) -> None:
    # Given a token piped in (not a terminal)
    io = make_io(stdin=std_io.StringIO(TOKEN + "\n"))
    # When set runs
    code = cli.main(
        ["credentials", "set", "docker-hub", "--username", "bob", "--config", str(config), "--check-only"], io
    )
    # Then the piped token was used without any prompt
    assert code == 0
    assert io.prompts == []  # type: ignore[attr-defined]
    assert checks[0]["token"] == TOKEN
    assert checks[0]["username"] == "bob"


def test_set_with_a_refused_token_stores_nothing(config: Path, checks: list[dict[str, Any]]) -> None:
    io = make_io(stdin=std_io.StringIO("bad\n"))
    code = cli.main(["credentials", "set", "docker-hub", "--username", "bob", "--config", str(config)], io)
    assert code == 1
    assert "nothing stored. Fix: create a new token" in output(io)


def test_piped_set_without_a_username_says_to_pass_one(config: Path, checks: list[dict[str, Any]]) -> None:
    io = make_io(stdin=std_io.StringIO(TOKEN))
    code = cli.main(["credentials", "set", "docker-hub", "--config", str(config)], io)
    assert code == 2
    assert "pass --username" in output(io)


@pytest.mark.parametrize("username", [TOKEN, "ghp_" + "Sw4pped0ne" * 4], ids=["the-token-itself", "a-github-token"])
def test_a_token_given_as_the_username_is_refused_before_any_check(
    config: Path, checks: list[dict[str, Any]], username: str
) -> None:
    # Given the token passed where the user name goes (fields swapped)
    io = make_io(stdin=std_io.StringIO(TOKEN + "\n"))
    # When set runs
    code = cli.main(["credentials", "set", "docker-hub", "--username", username, "--config", str(config)], io)
    # Then nothing is checked or stored, and the message says what is wrong without showing either value
    assert code == 2
    assert checks == []
    assert "the value of 'username' looks like an access token" in output(io)
    assert TOKEN not in output(io)
    assert username not in output(io)


def test_empty_token_is_refused(config: Path, checks: list[dict[str, Any]]) -> None:
    io = make_io(stdin=std_io.StringIO("\n"))
    code = cli.main(["credentials", "set", "docker-hub", "--username", "bob", "--config", str(config)], io)
    assert code == 2
    assert "no token given" in output(io)
    assert checks == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("dockerhub", "no rule with prefix 'dockerhub' in the config (rules: docker-hub, quay)"),
        ("quay", "rule quay (Quay) takes no credentials"),
    ],
)
def test_set_names_the_rule_problem(config: Path, checks: list[dict[str, Any]], rule: str, expected: str) -> None:
    io = make_io()
    code = cli.main(["credentials", "set", rule, "--config", str(config)], io)
    assert code == 2
    assert expected in output(io)


def test_bad_config_is_reported_not_raised(tmp_path: Path, checks: list[dict[str, Any]]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 2\nrules: []\n")
    io = make_io()
    code = cli.main(["credentials", "check", "--config", str(path)], io)
    assert code == 2
    assert "problem(s) in the Pullthrough config" in output(io)


def test_parse_errors_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["credentials", "set", "docker-hub", "--expires", "soon"])
    assert exited.value.code == 2
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)


def test_main_puts_logging_and_metrics_back(config: Path, checks: list[dict[str, Any]]) -> None:
    # Given the library's logger at INFO and metrics enabled, as in a Lambda function
    from pullthrough.observability import logger

    logger.setLevel("INFO")
    before = (logger.log_level, os.environ.get("POWERTOOLS_METRICS_DISABLED"))
    # When a command runs (quietly, as at a terminal)
    cli.main(["credentials", "set", "docker-hub", "--config", str(config), "--check-only"], make_io())
    # Then both are as they were: main() may run inside another program
    assert (logger.log_level, os.environ.get("POWERTOOLS_METRICS_DISABLED")) == before
