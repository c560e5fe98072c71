"""One report model for every Pullthrough run (rules, credentials, warm, pulls, prune), its rendering for SNS, and
the one way a report is published.

A run's builder (rules/, credentials/, warm/, prune/, pull_failures.py) collects `ReportItem`s, one per image, rule
or secret, and constructs a `Report` once at the end. The report renders itself as a person reads it (a subject of
at most 99 characters, status first; a plain-text body) and as a machine reads it (message attributes for SNS
filter policies; the report's JSON as the body's last block, between BEGIN and END marker lines).

SNS caps a message at 262,144 bytes. A report that does not fit is summarised: every failure up to a bound keeps
its reason and fix, the rest collapse into counts, the JSON lists only what the text lists (with a `truncated`
count), and the body says the full detail is in the logs under the run id.

The modules: `vocabulary` (Kind, Status, Severity, Outcome), `items` (ReportItem, Details, Totals), `model` (Report),
`links` (console pages, Logs Insights), `facts` (an item's details as words), `render` (subject, body, Message),
`publish` (log, metrics, SNS: the one publish), `rejection` (events a handler cannot take). The public names of the
first six are re-exported here; import `publish` and `rejection` by their module.
"""

from __future__ import annotations

from pullthrough.reporting.facts import human_bytes
from pullthrough.reporting.items import Details, ReportItem, Totals
from pullthrough.reporting.links import (
    CONSOLE_LINK_LIMIT,
    Link,
    Links,
    console_pull_through_cache_url,
    console_repositories_url,
    console_repository_url,
    console_secret_url,
    logs_insights_query,
    logs_insights_url,
)
from pullthrough.reporting.model import Report, SuccessVerbosity
from pullthrough.reporting.render import (
    JSON_BEGIN,
    JSON_END,
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
    SUCCESS_LIST_LIMIT,
    SUMMARY_PROBLEM_LIMIT,
    Message,
)
from pullthrough.reporting.vocabulary import CHANGE_OUTCOMES, Kind, Outcome, Severity, Status

__all__ = [
    "CHANGE_OUTCOMES",
    "CONSOLE_LINK_LIMIT",
    "JSON_BEGIN",
    "JSON_END",
    "MAX_MESSAGE_BYTES",
    "MAX_SUBJECT_CHARS",
    "SUCCESS_LIST_LIMIT",
    "SUMMARY_PROBLEM_LIMIT",
    "Details",
    "Kind",
    "Link",
    "Links",
    "Message",
    "Outcome",
    "Report",
    "ReportItem",
    "Severity",
    "Status",
    "SuccessVerbosity",
    "Totals",
    "console_pull_through_cache_url",
    "console_repositories_url",
    "console_repository_url",
    "console_secret_url",
    "human_bytes",
    "logs_insights_query",
    "logs_insights_url",
]
