"""Reports across the organisation: member runs send their reports to the hub, which reports each warm cycle once.

- `cycles`: the warm cycle a run belongs to (the schedule slot), and when the hub stops waiting for it;
- `event`: the "Pullthrough Report" event a member puts on the hub's bus (its shape, its 256 KB fit), both sides;
- `expected`: which member accounts and regions the hub waits for (the config, the StackSet's instances);
- `hub_report`: the hub's report of one cycle (per account and region, each failure with its reason and fix);
- `gather`: gather_reports, the hub's function: records each member report once, closes each cycle once.

The member side is reporting/publish.py (the one way a report leaves a function); docs/REPORTS.md,
"Organisation reports", is the reader's page.
"""
