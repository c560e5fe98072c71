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


def test_the_published_schemas_are_the_documents_the_commands_print() -> None:
    # docs/cli/<command>.schema.json is generated from pullthrough/cli/documents.py (make schema): never stale
    from pullthrough.cli import documents

    folder = Path(__file__).parents[2] / "docs" / "cli"
    for name in documents.DOCUMENTS:
        published = json.loads((folder / f"{name}.schema.json").read_text())
        assert published == documents.schema(name), f"docs/cli/{name}.schema.json is stale: run make schema"
        assert published["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert published["properties"]["schema"] == {"const": f"pullthrough/{name}/v1"}
    listed = {path.name.removesuffix(".schema.json") for path in folder.glob("*.schema.json")}
    assert listed == set(documents.DOCUMENTS)


def test_every_command_a_message_tells_people_to_run_exists() -> None:
    # Fixes and help name commands ("run `pullthrough reconcile`"); each must be one the parser knows
    import re

    library = Path(cli.__file__).parents[1]
    named = {
        match.group(1)
        for path in library.rglob("*.py")
        for match in re.finditer(r"`pullthrough ([a-z][a-z-]*)", path.read_text(encoding="utf-8"))
    }
    assert "reconcile" in named
    commands = {words[0] for words in subcommands(cli.build_parser())}
    assert named <= commands, f"messages name commands that do not exist: {sorted(named - commands)}"


def test_the_stack_s_ledger_and_role_come_from_cloudformation_in_the_region_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack that CloudFormation does not know, in the region given by --region
    from pullthrough.cli import deployment

    asked: list[tuple[str, str | None]] = []

    def physical_ids(stack: str, region: str | None = None) -> dict[str, str]:
        asked.append((stack, region))
        return {"LedgerTable": "pullthrough-LedgerTable-1", "RepositoryCreationRole": "pullthrough-Role-1"}

    monkeypatch.setattr("pullthrough.aws.stack.physical_ids", physical_ids)
    for name in ("LEDGER_TABLE", "TEMPLATE_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    settings = common.Settings.from_env({"ACCOUNT_ID": "123456789012", "AWS_REGION": "us-east-1"})
    settings = settings.model_copy(update={"region": "eu-west-1"})
    found, notes = deployment.deployed(settings, argparse.Namespace(stack="prod"))
    # Then the stack's ledger table and role come from it, the role's ARN with template.yaml's path
    assert asked == [("prod", "eu-west-1")]
    assert (found.stack_name, found.ledger_table, found.template_role_arn, notes) == (
        "prod",
        "pullthrough-LedgerTable-1",
        "arn:aws:iam::123456789012:role/pullthrough/pullthrough-Role-1",
        [],
    )


def test_without_a_stack_the_note_says_how_to_name_the_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    from pullthrough.cli import deployment

    monkeypatch.setattr("pullthrough.aws.stack.physical_ids", lambda stack, region=None: {})
    settings = common.Settings.from_env({"ACCOUNT_ID": "123456789012"})
    found, notes = deployment.deployed(settings, argparse.Namespace(stack=None))
    assert found.ledger_table is None
    assert notes == [
        "stack pullthrough: no ledger table found (CloudFormation has no stack pullthrough here, or no access): "
        "ownership and runs are unknown; pass --stack NAME or set LEDGER_TABLE to the stack's LedgerTable"
    ]


@pytest.mark.parametrize("command", [["plan"], ["reconcile", "--dry-run"], ["status"]])
def test_a_config_that_cannot_be_read_is_exit_2_with_one_message(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    out, err = std_io.StringIO(), std_io.StringIO()
    code = cli.main([*command, "--config", str(missing), "--json"], cli.Io(stdout=out, stderr=err))
    assert code == cli.EXIT_USAGE
    assert out.getvalue() == ""
    assert str(missing) in err.getvalue()
    assert err.getvalue().startswith("error: ")
    assert "Traceback" not in err.getvalue()
