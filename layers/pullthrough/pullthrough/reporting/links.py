"""Where a report points its reader: console pages of repositories, secrets and rules, and a Logs Insights query (and
its console link) for every log line of the run.

Separate from rendering because the links are data too (the report's JSON carries them) and because the console's
undocumented Logs Insights URL format deserves a module of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from pullthrough.reporting.vocabulary import Kind

if TYPE_CHECKING:
    from pullthrough.reporting.items import ReportItem
    from pullthrough.reporting.model import Report

# "Where to look" lists at most this many console pages.
CONSOLE_LINK_LIMIT = 10


class Link(BaseModel):
    """A console page, with words saying what it shows."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    title: str
    url: str


class Links(BaseModel):
    """Where to look for more: the run id, a Logs Insights query for it, and console pages."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    logs_insights_query: str
    logs_insights_url: str
    console: tuple[Link, ...]


def console_links(report: Report) -> tuple[Link, ...]:
    """The console pages of the report's problems (at most CONSOLE_LINK_LIMIT), then the page of its kind."""
    links: dict[str, Link] = {}
    for item in report.problems():
        url = report.item_url(item)
        if url and url not in links:
            links[url] = Link(title=_link_title(item), url=url)
        if len(links) >= CONSOLE_LINK_LIMIT - 1:  # one place is kept for the kind's own page
            break
    page = _kind_page(report)
    links.setdefault(page.url, page)
    return tuple(links.values())


def _console_host(region: str) -> str:
    if region.startswith("cn-"):
        return f"https://{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def console_repository_url(region: str, account: str, repository: str) -> str:
    """The ECR console page of one private repository."""
    return f"{_console_host(region)}/ecr/repositories/private/{account}/{repository}?region={region}"


def console_pull_through_cache_url(region: str) -> str:
    """The ECR console's Private registry > Pull through cache page, listing the rules."""
    return f"{_console_host(region)}/ecr/private-registry/pull-through-cache?region={region}"


def console_repositories_url(region: str) -> str:
    """The ECR console's list of private repositories."""
    return f"{_console_host(region)}/ecr/private-registry/repositories?region={region}"


def console_secret_url(region: str, secret: str) -> str:
    """The Secrets Manager console page of one secret, by name or ARN."""
    if ":secret:" in secret:
        # An ARN ends in "-" and six random characters that Secrets Manager added; the console wants the name.
        secret = re.sub(r"-[A-Za-z0-9]{6}$", "", secret.split(":secret:", 1)[1])
    return f"{_console_host(region)}/secretsmanager/secret?name={quote(secret, safe='')}&region={region}"


def logs_insights_query(run_id: str) -> str:
    """A Logs Insights query for every log line of one run (handlers append `run_id` to their logger's keys)."""
    quoted = run_id.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "fields @timestamp, level, message, subject, outcome, reason\n"
        f'| filter run_id = "{quoted}"\n'
        "| sort @timestamp asc\n"
        "| limit 10000"
    )


def logs_insights_url(region: str, query: str, log_groups: Sequence[str], start: datetime, end: datetime) -> str:
    """A CloudWatch console link that opens Logs Insights with `query` over `log_groups` between start and end.

    The console's fragment format is not documented: a JSURL-like object whose strings are percent-encoded with
    `*` for `%`, then escaped again with `$` for `%`; this follows URLs the console itself produces.
    """
    detail: dict[str, Any] = {
        "end": _insights_time(end),
        "start": _insights_time(start),
        "timeType": "ABSOLUTE",
        "tz": "Local",  # the value the console writes; the times are UTC either way
        "editorString": query,
        "isLiveTail": False,
    }
    if log_groups:
        detail["source"] = list(log_groups)
    encoded = _jsurl(detail)
    for char, escaped in (("~", "$257E"), ("(", "$2528"), (")", "$2529"), ("'", "$2527")):
        encoded = encoded.replace(char, escaped)
    return f"{_console_host(region)}/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D{encoded}"


def _insights_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _jsurl(value: Any) -> str:
    if isinstance(value, bool):
        return "~true" if value else "~false"
    if isinstance(value, int | float):
        return f"~{value}"
    if isinstance(value, str):
        return "~'" + "".join(c if c.isascii() and (c.isalnum() or c in "-.") else _star(c) for c in value)
    if isinstance(value, list):
        return "~(" + ("".join(_jsurl(v) for v in value) or "~") + ")"
    if isinstance(value, dict):
        return "~(" + "~".join(f"{key}{_jsurl(v)}" for key, v in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} for a Logs Insights link")


def _star(char: str) -> str:
    return "".join(f"*{byte:02x}" for byte in char.encode())


def _kind_page(report: Report) -> Link:
    if report.kind in (Kind.WARM, Kind.PULLS, Kind.PRUNE):
        return Link(title="ECR private repositories", url=console_repositories_url(report.region))
    return Link(title="ECR pull through cache rules", url=console_pull_through_cache_url(report.region))


def _link_title(item: ReportItem) -> str:
    details = item.details
    if details.repository:
        return f"ECR repository {details.repository}"
    if details.secret:
        return f"secret {details.secret.split(':secret:')[-1]}"
    return "ECR pull through cache rules"
