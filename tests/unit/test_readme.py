"""The README as a user follows it: every `pullthrough` command it shows exists with those options, and the monthly
cost table adds up."""

from __future__ import annotations

import re
import shlex
from decimal import Decimal
from pathlib import Path

import pytest

from pullthrough import cli

README = Path(__file__).parents[2] / "README.md"
# Families that live on another branch of issue 15 until it merges (urls and pull-config: the consume branch).
ELSEWHERE = {"urls", "pull-config"}


def shell_lines() -> list[str]:
    """The `pullthrough ...` commands of the README's bash blocks, comments and placeholders resolved."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith("pullthrough "):
                found.append(re.sub(r"<[^>]+>", "X", command))
    return found


def test_the_readme_shows_the_commands_of_the_users_path() -> None:
    families = {shlex.split(line)[1] for line in shell_lines()}
    assert {"credentials", "plan", "status", "uninstall", "urls", "pull-config"} <= families


@pytest.mark.parametrize("line", shell_lines())
def test_every_command_the_readme_shows_parses(line: str) -> None:
    argv = shlex.split(line)[1:]
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    if argv[0] not in commands and argv[0] in ELSEWHERE:
        pytest.skip(f"`pullthrough {argv[0]}` comes with the consume branch")
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            return
        pytest.fail(f"the README shows `{line}`, which the CLI refuses (exit {exc.code})")


def cost_rows() -> list[list[str]]:
    section = README.read_text(encoding="utf-8").split("## What it costs a month", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows if row[0].strip() not in ("item", "---")]


def dollars(cell: str) -> Decimal:
    return Decimal(cell.strip("*").removeprefix("$"))


def test_the_monthly_cost_table_adds_up() -> None:
    rows = cost_rows()
    *items, total = rows
    assert total[0] == "**total**"
    for column in (2, 3):
        assert sum(dollars(row[column]) for row in items) == dollars(total[column]), column


def test_the_lambda_arithmetic_is_what_the_row_says() -> None:
    row = next(row for row in cost_rows() if row[0] == "Lambda duration")
    seconds = 720 * 10 + 30 * 60 + 300 * 2 * 60 + 30 * 5
    assert f"= {seconds:,} s" in row[1]
    gb_seconds = Decimal(seconds) / 2
    assert f"{gb_seconds:,.0f} GB-s" in row[1]
    assert dollars(row[2]) == (gb_seconds * Decimal("0.0000133334")).quantize(Decimal("0.01"))


def test_every_link_of_the_readme_leads_somewhere() -> None:
    text = README.read_text(encoding="utf-8")
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("## ")
    }
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith("https://"):
            continue
        if target.startswith("#"):
            assert target[1:] in headings, target
        else:
            assert (README.parent / target).is_file(), target
