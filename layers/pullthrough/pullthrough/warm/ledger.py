"""The run ledger a function's environment names (LEDGER_TABLE), for what reads or writes the warm runs' records:
warm/ itself, `pullthrough status` (runs_view.py) and report_pull_failures (the failures a waiting import names).

A module of its own so that holding the ledger costs nothing else: report_pull_failures imports it without the
worker, the importer or Powertools' batch utility (bench/README.md, cold start).
"""

from __future__ import annotations

from pullthrough.aws.ledger import Ledger
from pullthrough.env import Settings, SettingsError


def ledger_for(settings: Settings) -> Ledger:
    """The run ledger named by LEDGER_TABLE."""
    if not settings.ledger_table:
        raise SettingsError("LEDGER_TABLE is not set: it names the warm run ledger (template.yaml: LedgerTable)")
    return Ledger(settings.ledger_table)
