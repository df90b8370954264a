"""Every write to the audit schema. Other apps call these inside their own transactions.

- ``records``: the change log, system events (one or a bot's batch) and risk-event resolution.
- ``quality``: the data-quality checks, each finding a system event (component "data_quality").
- ``runs``: the claims of scheduled runs, one per (task, due slot) (audit/scheduled.py).

Everything is importable from ``audit.services`` itself.
"""

from audit.services.quality import data_quality_check
from audit.services.records import (
    SYSTEM_EVENT_COLUMNS,
    SYSTEM_EVENT_INSERT_SQL,
    bot_run_change_record,
    bot_status_change_record,
    change_record,
    json_safe,
    model_values,
    risk_event_resolve,
    system_event_insert_many,
    system_event_record,
)
from audit.services.runs import scheduled_run_claim

__all__ = [
    "SYSTEM_EVENT_COLUMNS",
    "SYSTEM_EVENT_INSERT_SQL",
    "bot_run_change_record",
    "bot_status_change_record",
    "change_record",
    "data_quality_check",
    "json_safe",
    "model_values",
    "risk_event_resolve",
    "scheduled_run_claim",
    "system_event_insert_many",
    "system_event_record",
]
