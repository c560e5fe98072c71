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
`publish` (log, metrics, SNS: the one publish), `rejection` (events a handler cannot take). Nothing is re-exported
here: import each name from its module, so a handler imports only the modules it uses (bench/README.md, cold start).
"""
