"""Scheduled audit work (the schedule: `manage.py setup_periodic_tasks`). Thin, locked,
idempotent, like analytics/tasks.py."""

import logging

from celery import shared_task

from audit.backups.dump import backup_create
from audit.backups.retention import backup_prune
from audit.services import data_quality_check
from trading.db import advisory_lock

logger = logging.getLogger(__name__)

DATA_QUALITY_CHECK = "audit.data_quality_check"
DB_BACKUP = "audit.db_backup"


@shared_task(name=DATA_QUALITY_CHECK, acks_late=True)
def data_quality_check_task() -> int | None:
    """The data-quality checks. Returns the number of findings recorded, None if skipped."""
    with advisory_lock(DATA_QUALITY_CHECK) as acquired:
        if not acquired:
            logger.info("%s skipped: another worker holds its lock", DATA_QUALITY_CHECK)
            return None
        return len(data_quality_check())


@shared_task(name=DB_BACKUP, acks_late=True)
def db_backup_task() -> int | None:
    """A backup, then retention. The lock is held for the whole pg_dump (its transaction stays
    open around it), so two at once dump once. Returns the backup's id, None if skipped; a
    failed backup is recorded, then raised so the worker counts a failure."""
    with advisory_lock(DB_BACKUP) as acquired:
        if not acquired:
            logger.info("%s skipped: another worker holds its lock", DB_BACKUP)
            return None
        backup = backup_create()
        if backup.verified:
            backup_prune()
    if not backup.verified:
        raise RuntimeError(f"backup {backup.pk} failed: {backup.error}")
    return backup.pk
