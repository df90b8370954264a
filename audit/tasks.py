"""Scheduled audit work (the schedule: `manage.py setup_periodic_tasks`). Thin scheduled runs
of their due slot, like analytics/tasks.py: a second beat's copy of a slot does nothing."""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.db import connection
from django.utils import timezone

from audit.backups.dump import backup_create
from audit.backups.retention import backup_prune
from audit.scheduled import scheduled_run
from audit.services import data_quality_check
from audit.services.market_data import market_data_maintain

DATA_QUALITY_CHECK = "audit.data_quality_check"
DB_BACKUP = "audit.db_backup"
MARKET_DATA_MAINTENANCE = "audit.market_data_maintenance"

# The slot of each scheduled task: its beat entry fires once in each such period of the clock.
PERIODS = {
    DATA_QUALITY_CHECK: timedelta(hours=1),
    DB_BACKUP: timedelta(hours=1),
    MARKET_DATA_MAINTENANCE: timedelta(hours=1),
}


@shared_task(name=DATA_QUALITY_CHECK, acks_late=True, bind=True, max_retries=None)
def data_quality_check_task(self: Any, due: str | None = None) -> int | None:
    """The data-quality checks. Returns the number of findings recorded, None if not run."""
    every = PERIODS[DATA_QUALITY_CHECK]
    with scheduled_run(self, lock=DATA_QUALITY_CHECK, every=every, due=due) as slot:
        if slot is None:
            return None
        return len(data_quality_check())


@shared_task(name=DB_BACKUP, acks_late=True, bind=True, max_retries=None)
def db_backup_task(self: Any, due: str | None = None) -> int | None:
    """A backup, then retention: one per hourly slot. The lock (shared with `manage.py
    db_backup`) is held for the whole pg_dump (its transaction stays open around it), and the
    slot's claim commits with the Backup row, so two at once, or two beats, dump once; a worker
    killed mid-dump leaves no claim, and the redelivered message dumps. Returns the backup's id,
    None if not run; a failed backup is recorded (and its slot claimed: the next hour tries
    again), then raised so the worker counts a failure."""
    with scheduled_run(self, lock=DB_BACKUP, every=PERIODS[DB_BACKUP], due=due) as slot:
        if slot is None:
            return None
        with connection.cursor() as cursor:
            # This transaction (the lock, the claim) waits idle for the whole pg_dump: a
            # worker's idle-in-transaction limit, there for runs that stall, must not end it.
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        backup = backup_create()
        if backup.verified:
            backup_prune()
    if not backup.verified:
        raise RuntimeError(f"backup {backup.pk} failed: {backup.error}")
    return backup.pk


@shared_task(name=MARKET_DATA_MAINTENANCE, acks_late=True, bind=True, max_retries=None)
def market_data_maintenance_task(self: Any, due: str | None = None) -> dict[str, Any] | None:
    """trading.market_data's partitions: this month's and the next two made, closed months
    clustered, months past MARKET_DATA_RETENTION_DAYS dropped (audit/services/market_data.py).
    Returns what it did, None if not run."""
    every = PERIODS[MARKET_DATA_MAINTENANCE]
    with scheduled_run(self, lock=MARKET_DATA_MAINTENANCE, every=every, due=due) as slot:
        if slot is None:
            return None
        report = market_data_maintain(now=timezone.now())
    return {
        "created": report.created,
        "clustered": report.clustered,
        "dropped": [d.as_json() for d in report.dropped],
        "drop_postponed": report.drop_postponed,
    }
