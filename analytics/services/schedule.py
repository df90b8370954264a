"""The beat schedule kept in the database (django_celery_beat), written from code on release.

The entries named here belong to the code: `manage.py setup_periodic_tasks` creates them or
brings their task, schedule and description up to date, by name. It leaves alone whether an entry
is enabled (staff may pause one in the admin) and every entry staff added.

Every entry is a crontab firing once in each period of its task (the tasks' PERIODS), aligned to
the clock: a run's due slot is the period beat sent it in, so two beats' copies of one firing
name the same slot, and the second does nothing (audit/scheduled.py). The alert sweeps are the
exception: intervals of seconds, with no slot, safe to run anywhere at once (alerts/tasks.py).
"""

from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from alerts import tasks as alerts_tasks
from analytics import tasks as analytics_tasks
from audit import tasks as audit_tasks

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class ScheduledTask:
    name: str  # the PeriodicTask's name, its key; the same as the Celery task name
    description: str
    crontab_minute: str = ""  # a crontab (UTC, every hour of every day unless these say)
    crontab_hour: str = "*"
    crontab_day_of_week: str = "*"
    every_seconds: int = 0  # or an interval: sweeps with no slot (alerts), idempotent anywhere

    @property
    def task(self) -> str:
        return self.name


SCHEDULE: tuple[ScheduledTask, ...] = (
    ScheduledTask(
        analytics_tasks.PORTFOLIO_SNAPSHOT,
        "Portfolio snapshot of each 5-minute bucket (runs at the bucket's start).",
        crontab_minute="*/5",
    ),
    ScheduledTask(
        analytics_tasks.RISK_METRICS_ROLLUP_TODAY,
        "Yesterday's and today's trading.risk_metrics rows of every bot.",
        crontab_minute="*/15",
    ),
    ScheduledTask(
        analytics_tasks.SUMMARY_CHECKPOINTS_REFRESH,
        "Bot summary checkpoints moved to the start of the day, or rebuilt where trades before "
        "their cut changed.",
        crontab_minute="2,17,32,47",
    ),
    ScheduledTask(
        analytics_tasks.VIEWS_REFRESH,
        "REFRESH MATERIALIZED VIEW CONCURRENTLY of both analytics views.",
        crontab_minute="1-59/5",
    ),
    ScheduledTask(
        analytics_tasks.RISK_LIMITS_CHECK,
        "Each bot against its risk limits (risk events, pausing where configured).",
        crontab_minute="*",
    ),
    ScheduledTask(
        analytics_tasks.HEARTBEAT_STALE_CHECK,
        "Bots whose last heartbeat is older than BOT_HEARTBEAT_STALE_SECONDS.",
        crontab_minute="*",
    ),
    ScheduledTask(
        analytics_tasks.DERIVED_CANDLES_CATCH_UP,
        "The 5m to 1d candles derived from the 1m candles that arrived since the last run.",
        crontab_minute="*",
    ),
    ScheduledTask(
        analytics_tasks.PREDICTIONS_MAINTAIN,
        "Predictions whose target candle came scored; those past their model's TTL "
        "(PREDICTION_TTL_SECONDS) deleted.",
        crontab_minute="3-59/5",
    ),
    ScheduledTask(
        audit_tasks.DATA_QUALITY_CHECK,
        "Data-quality checks over the stored data (findings as system events).",
        crontab_minute="7",
    ),
    ScheduledTask(
        audit_tasks.DB_BACKUP,
        "pg_dump of the database, checked, then retention (BACKUP_KEEP_*).",
        crontab_minute="17",
    ),
    ScheduledTask(
        audit_tasks.MARKET_DATA_MAINTENANCE,
        "trading.market_data's monthly partitions: made ahead, closed months clustered, months "
        "past MARKET_DATA_RETENTION_DAYS dropped (a system event says which).",
        crontab_minute="23",
    ),
    ScheduledTask(
        alerts_tasks.DELIVER,
        "Deliver the alert outbox (the safety net that bounds a breach's time to its receiver).",
        every_seconds=2,
    ),
    ScheduledTask(
        alerts_tasks.ESCALATE,
        "Critical events not acknowledged within their rule's minutes: to its escalation channel.",
        every_seconds=30,
    ),
    ScheduledTask(
        analytics_tasks.REPORT_DAILY,
        "Yesterday's report to each active daily recipient list (at 00:05 UTC).",
        crontab_minute="5",
        crontab_hour="0",
    ),
    ScheduledTask(
        analytics_tasks.REPORT_WEEKLY,
        "Last ISO week's report to each active weekly recipient list (Monday 00:10 UTC).",
        crontab_minute="10",
        crontab_hour="0",
        crontab_day_of_week="1",
    ),
)


def _crontab(minute: str, hour: str = "*", day_of_week: str = "*") -> CrontabSchedule:
    fields = {
        "minute": minute,
        "hour": hour,
        "day_of_week": day_of_week,
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    }
    schedule = CrontabSchedule.objects.filter(**fields).order_by("id").first()
    if schedule is None:
        schedule = CrontabSchedule.objects.create(**fields)
    return schedule


def _interval(seconds: int) -> IntervalSchedule:
    fields = {"every": seconds, "period": IntervalSchedule.SECONDS}
    schedule = IntervalSchedule.objects.filter(**fields).order_by("id").first()
    if schedule is None:
        schedule = IntervalSchedule.objects.create(**fields)
    return schedule


@transaction.atomic
def periodic_tasks_setup() -> dict[str, Outcome]:
    """Create or update each entry of SCHEDULE by name; returns what happened to each."""
    outcomes: dict[str, Outcome] = {}
    for entry in SCHEDULE:
        wanted = {
            "task": entry.task,
            "description": entry.description,
            "interval": _interval(entry.every_seconds) if entry.every_seconds else None,
            "crontab": None
            if entry.every_seconds
            else _crontab(entry.crontab_minute, entry.crontab_hour, entry.crontab_day_of_week),
            "solar": None,
            "clocked": None,
        }
        current = PeriodicTask.objects.select_for_update().filter(name=entry.name).first()
        if current is None:
            PeriodicTask.objects.create(name=entry.name, enabled=True, **wanted)
            outcomes[entry.name] = "created"
            continue
        changed = [name for name, value in wanted.items() if getattr(current, name) != value]
        if changed:
            for name in changed:
                setattr(current, name, wanted[name])
            current.save()
            outcomes[entry.name] = "updated"
        else:
            outcomes[entry.name] = "unchanged"
    return outcomes


def periodic_tasks_not_in_code() -> list[str]:
    """Names of the entries staff added (the setup never touches them)."""
    ours = [entry.name for entry in SCHEDULE]
    return list(
        PeriodicTask.objects.exclude(name__in=ours).order_by("name").values_list("name", flat=True)
    )
