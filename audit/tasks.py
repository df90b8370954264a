"""Scheduled audit work (the schedule: `manage.py setup_periodic_tasks`). Thin, locked,
idempotent, like analytics/tasks.py."""

import logging

from celery import shared_task

from audit.services import data_quality_check
from trading.db import advisory_lock

logger = logging.getLogger(__name__)

DATA_QUALITY_CHECK = "audit.data_quality_check"


@shared_task(name=DATA_QUALITY_CHECK, acks_late=True)
def data_quality_check_task() -> int | None:
    """The data-quality checks. Returns the number of findings recorded, None if skipped."""
    with advisory_lock(DATA_QUALITY_CHECK) as acquired:
        if not acquired:
            logger.info("%s skipped: another worker holds its lock", DATA_QUALITY_CHECK)
            return None
        return len(data_quality_check())
