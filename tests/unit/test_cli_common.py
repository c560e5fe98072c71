"""The shape every `pullthrough` command shares (pullthrough/cli/common.py): options, output, exit codes."""

from __future__ import annotations

import argparse
import io as std_io
import json
from pathlib import Path

import pytest

from pullthrough import cli
from pullthrough.cli import common


def subcommands(
    parser: argparse.ArgumentParser, trail: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every leaf command of the parser (`credentials check`, `warm`, ...) by its words."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= subcommands(sub, (*trail, name))
    return found or {trail: parser}


def test_every_command_takes_config_region_profile_and_json() -> None:
    leaves = subcommands(cli.build_parser())
    assert ("warm",) in leaves
    assert ("credentials", "check") in leaves
    for words, parser in leaves.items():
        options = {o for action in parser._actions for o in action.option_strings}
        assert {"--config", "--region", "--profile", "--json"} <= options, words


def test_exit_codes_are_the_documented_ones() -> None:
    assert (cli.EXIT_OK, cli.EXIT_FINDINGS, cli.EXIT_USAGE) == (0, 1, 2)


def test_emit_prints_one_tagged_json_document_or_the_text() -> None:
    args = argparse.Namespace(command="status", json=True)
    out = std_io.StringIO()
    common.emit(cli.Io(stdout=out), args, {"rules": []}, ["text that is not printed"])
    assert json.loads(out.getvalue()) == {"schema": "pullthrough/status/v1", "rules": []}
    text = std_io.StringIO()
    common.emit(cli.Io(stdout=text), argparse.Namespace(command="status", json=False), {"rules": []}, ["a", "b"])
    assert text.getvalue() == "a\nb\n"


def test_progress_goes_to_stderr_only_when_asked_or_at_a_terminal() -> None:
    out, err = std_io.StringIO(), std_io.StringIO()
    cli.Io(stdout=out, stderr=err, show_progress=True).progress("planning...")
    cli.Io(stdout=out, stderr=err).progress("not at a terminal: not shown")
    assert (out.getvalue(), err.getvalue()) == ("", "planning...\n")


def test_region_is_applied_to_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pullthrough.yaml"
    config.write_text(json.dumps({"version": 1, "rules": [{"prefix": "quay", "upstream": "quay"}]}))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    args = argparse.Namespace(config=str(config), region="eu-west-1", profile=None)
    settings, loaded = common.environment(args)
    assert (settings.region, settings.config_path, [r.prefix for r in loaded.rules]) == (
        "eu-west-1",
        str(config),
        ["quay"],
    )


def test_an_unknown_profile_is_a_usage_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pullthrough.yaml"
    config.write_text(json.dumps({"version": 1, "rules": [{"prefix": "quay", "upstream": "quay"}]}))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-credentials"))
    out, err = std_io.StringIO(), std_io.StringIO()
    code = cli.main(
        ["credentials", "check", "--config", str(config), "--profile", "nobody"], cli.Io(stdout=out, stderr=err)
    )
    assert code == cli.EXIT_USAGE
    assert out.getvalue() == ""
    assert "--profile nobody: no such profile" in err.getvalue()
    assert "Traceback" not in err.getvalue()
