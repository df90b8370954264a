"""Scheduled analytics work (the schedule: `manage.py setup_periodic_tasks`).

Each task is thin: it takes the advisory lock named after itself, so two workers never run it at
once (the second logs and skips), and calls one service. Each is idempotent: a rerun of the same
period rewrites the same rows, so a task redelivered after a worker died mid-run (acks_late)
leaves one result.
"""

import logging
from datetime import UTC, timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from analytics.services import (
    bot_summary_checkpoints_refresh,
    portfolio_snapshot_take,
    risk_metrics_backlog_redo,
    risk_metrics_rollup,
    views_refresh,
)
from analytics.services.risk import heartbeat_stale_check, risk_limits_check
from trading.db import advisory_lock

logger = logging.getLogger(__name__)

PORTFOLIO_SNAPSHOT = "analytics.portfolio_snapshot"
RISK_METRICS_ROLLUP_TODAY = "analytics.risk_metrics_rollup_today"
VIEWS_REFRESH = "analytics.views_refresh"
RISK_LIMITS_CHECK = "analytics.risk_limits_check"
HEARTBEAT_STALE_CHECK = "analytics.heartbeat_stale_check"
RISK_METRICS_BACKFILL = "analytics.risk_metrics_backfill"
SUMMARY_CHECKPOINTS_REFRESH = "analytics.summary_checkpoints_refresh"
# The rollup task and `manage.py rollup_risk_metrics` write the same rows: one lock for both.
RISK_METRICS_ROLLUP_LOCK = "analytics.risk_metrics_rollup"


def skipped(name: str) -> None:
    logger.info("%s skipped: another worker holds its lock", name)


@shared_task(name=PORTFOLIO_SNAPSHOT, acks_late=True)
def portfolio_snapshot() -> str | None:
    """The portfolio snapshot of the current 5-minute bucket. Returns its time, None if skipped."""
    with advisory_lock(PORTFOLIO_SNAPSHOT) as acquired:
        if not acquired:
            skipped(PORTFOLIO_SNAPSHOT)
            return None
        return portfolio_snapshot_take().ts.isoformat()


@shared_task(name=RISK_METRICS_ROLLUP_TODAY, acks_late=True)
def risk_metrics_rollup_today() -> int | None:
    """Yesterday's and today's risk_metrics rows of every bot. Yesterday is redone so that trades
    that closed in its last minutes (after its last run) are counted before today builds on it;
    older days that trades marked stale (trading.RiskMetricsBacklog) are redone first. Returns
    today's row count, None if skipped."""
    with advisory_lock(RISK_METRICS_ROLLUP_LOCK) as acquired:
        if not acquired:
            skipped(RISK_METRICS_ROLLUP_TODAY)
            return None
        risk_metrics_backlog_redo()
        today = timezone.now().astimezone(UTC).date()
        risk_metrics_rollup(day=today - timedelta(days=1))
        return risk_metrics_rollup(day=today)


@shared_task(name=VIEWS_REFRESH, acks_late=True)
def views_refresh_task() -> bool:
    """Both materialized views, CONCURRENTLY. Returns False if skipped."""
    with advisory_lock(VIEWS_REFRESH) as acquired:
        if not acquired:
            skipped(VIEWS_REFRESH)
            return False
        views_refresh()
        return True


@shared_task(name=RISK_LIMITS_CHECK, acks_late=True)
def risk_limits_check_task() -> int | None:
    """Each bot against its risk limits. Returns the number of risk events, None if skipped."""
    with advisory_lock(RISK_LIMITS_CHECK) as acquired:
        if not acquired:
            skipped(RISK_LIMITS_CHECK)
            return None
        return len(risk_limits_check())


@shared_task(name=HEARTBEAT_STALE_CHECK, acks_late=True)
def heartbeat_stale_check_task() -> int | None:
    """Bots whose heartbeat is stale. Returns the number of risk events, None if skipped."""
    with advisory_lock(HEARTBEAT_STALE_CHECK) as acquired:
        if not acquired:
            skipped(HEARTBEAT_STALE_CHECK)
            return None
        return len(heartbeat_stale_check())


@shared_task(name=SUMMARY_CHECKPOINTS_REFRESH, acks_late=True)
def summary_checkpoints_refresh_task() -> int | None:
    """Every bot's summary checkpoint that does not serve or is cut before today, rebuilt, so
    that the day's reads of bot summaries combine it with today's trades only. Returns the
    number armed, None if skipped."""
    with advisory_lock(SUMMARY_CHECKPOINTS_REFRESH) as acquired:
        if not acquired:
            skipped(SUMMARY_CHECKPOINTS_REFRESH)
            return None
        return bot_summary_checkpoints_refresh()


@shared_task(name=RISK_METRICS_BACKFILL, acks_late=True, bind=True, max_retries=20)
def risk_metrics_backfill(self: Any) -> int:
    """The risk_metrics days that trades marked stale (trading.RiskMetricsBacklog), redone now:
    queued on commit by an import, so its history shows at once rather than at the next
    scheduled rollup. While the rollup holds the lock it comes back in 30 s; if it gives up, the
    marks stay and the next scheduled rollup redoes them. Returns the rows written."""
    with advisory_lock(RISK_METRICS_ROLLUP_LOCK) as acquired:
        if not acquired:
            raise self.retry(countdown=30)
        return risk_metrics_backlog_redo()
