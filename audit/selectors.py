"""Every read of the audit schema that the API, admin and tasks share.

``bot`` is the calling bot, or ``None`` for a staff caller: a bot reads only the events about
itself (a system event with no bot is staff's alone); staff read them all. Querysets come back
unordered and unevaluated; their serializers read only the rows' own columns, so a page of any
size is one query.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from audit.models import Backup, RiskEvent, SystemEvent
from trading.models import Bot


def risk_event_list(*, bot: Bot | None) -> QuerySet[RiskEvent]:
    events = RiskEvent.objects.order_by()
    return events if bot is None else events.filter(bot=bot)


def system_event_list(*, bot: Bot | None) -> QuerySet[SystemEvent]:
    events = SystemEvent.objects.order_by()
    return events if bot is None else events.filter(bot=bot)


# --- Data quality -------------------------------------------------------------------------------

DATA_QUALITY_COMPONENT = "data_quality"
DATA_QUALITY_RUN = "data_quality_run"


@dataclass(frozen=True)
class DataQualityReport:
    """The latest data-quality run: when it ran (None before the first run) and what it found."""

    checked_at: datetime | None
    findings: list[SystemEvent]


def data_quality_latest() -> DataQualityReport:
    """The findings of the latest run (``audit.services.quality``), by check then id. Two
    queries: the run's record (system_events_type_ts_idx), then its findings by id."""
    run = (
        SystemEvent.objects.filter(component=DATA_QUALITY_COMPONENT, event_type=DATA_QUALITY_RUN)
        .order_by("-ts", "-id")
        .first()
    )
    if run is None:
        return DataQualityReport(checked_at=None, findings=[])
    findings = SystemEvent.objects.filter(id__in=run.details.get("finding_ids", []))
    return DataQualityReport(
        checked_at=run.ts, findings=list(findings.order_by("event_type", "id"))
    )


# --- Backups ------------------------------------------------------------------------------------


def backup_latest(*, verified: bool = True) -> Backup | None:
    """The newest backup of the configured database (``verified``: the newest good one, what
    ``/health/ready`` and ``/metrics`` report the age of; else the newest attempt, good or
    failed). One indexed query (backups_verified_idx / backups_database_idx)."""
    backups = Backup.objects.filter(database=connection.settings_dict["NAME"])
    if verified:
        backups = backups.filter(verified=True)
    return backups.order_by("-started_at", "-id").first()


def backup_last_drill() -> Backup | None:
    """The backup of the configured database whose restore drill ended last (``drill_error``
    says whether it failed); None before any drill. Retention keeps the table small."""
    return (
        Backup.objects.filter(database=connection.settings_dict["NAME"], drilled_at__isnull=False)
        .order_by("-drilled_at", "-id")
        .first()
    )
