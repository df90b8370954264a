"""Scheduled analytics work (the schedule: `manage.py setup_periodic_tasks`).

Each scheduled task is thin: it runs as a scheduled run of its due slot (audit/scheduled.py),
under the advisory lock named after itself, and calls one service. A run that finds the lock
held comes back until the holder is gone; a slot whose work committed is not done again (a
second beat's copy, a redelivery), and a slot whose run died is done by its redelivery. Each
task's period (PERIODS) is the spacing of its beat entry.
"""

from datetime import UTC, timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from analytics.models import ReportPeriod
from analytics.services import (
    bot_summary_checkpoints_refresh,
    portfolio_snapshot_fill,
    risk_metrics_backlog_redo,
    risk_metrics_rollup,
    views_refresh,
)
from analytics.services.reports import last_complete_period, send_reports
from analytics.services.risk import heartbeat_stale_check, risk_limits_check
from analytics.services.snapshots import SNAPSHOT_BUCKET
from audit.scheduled import scheduled_run
from trading.db import advisory_lock
from trading.services.candles_derived import derived_candles_catch_up_all
from trading.services.predictions import predictions_expire, predictions_score

PORTFOLIO_SNAPSHOT = "analytics.portfolio_snapshot"
RISK_METRICS_ROLLUP_TODAY = "analytics.risk_metrics_rollup_today"
VIEWS_REFRESH = "analytics.views_refresh"
RISK_LIMITS_CHECK = "analytics.risk_limits_check"
HEARTBEAT_STALE_CHECK = "analytics.heartbeat_stale_check"
RISK_METRICS_BACKFILL = "analytics.risk_metrics_backfill"
SUMMARY_CHECKPOINTS_REFRESH = "analytics.summary_checkpoints_refresh"
DERIVED_CANDLES_CATCH_UP = "analytics.derived_candles_catch_up"
PREDICTIONS_MAINTAIN = "analytics.predictions_maintain"
# The rollup task and `manage.py rollup_risk_metrics` write the same rows: one lock for both.
RISK_METRICS_ROLLUP_LOCK = "analytics.risk_metrics_rollup"


# The slot of each scheduled task: its beat entry fires once in each such period of the clock.
PERIODS = {
    PORTFOLIO_SNAPSHOT: SNAPSHOT_BUCKET,
    RISK_METRICS_ROLLUP_TODAY: timedelta(minutes=15),
    SUMMARY_CHECKPOINTS_REFRESH: timedelta(minutes=15),
    VIEWS_REFRESH: timedelta(minutes=5),
    RISK_LIMITS_CHECK: timedelta(minutes=1),
    HEARTBEAT_STALE_CHECK: timedelta(minutes=1),
    DERIVED_CANDLES_CATCH_UP: timedelta(minutes=1),
    PREDICTIONS_MAINTAIN: timedelta(minutes=5),
}


@shared_task(name=PORTFOLIO_SNAPSHOT, acks_late=True, bind=True, max_retries=None)
def portfolio_snapshot(self: Any, due: str | None = None) -> str | None:
    """The portfolio snapshot of the bucket the run was due for, and of the empty buckets before
    it (portfolio_snapshot_fill). Returns the bucket's time, None if not run."""
    every = PERIODS[PORTFOLIO_SNAPSHOT]
    with scheduled_run(self, lock=PORTFOLIO_SNAPSHOT, every=every, due=due) as slot:
        if slot is None:
            return None
        return portfolio_snapshot_fill(due=slot)[-1].ts.isoformat()


@shared_task(name=RISK_METRICS_ROLLUP_TODAY, acks_late=True, bind=True, max_retries=None)
def risk_metrics_rollup_today(self: Any, due: str | None = None) -> int | None:
    """Yesterday's and today's risk_metrics rows of every bot. Yesterday is redone so that trades
    that closed in its last minutes (after its last run) are counted before today builds on it;
    older days that trades marked stale (trading.RiskMetricsBacklog) are redone first. Returns
    today's row count, None if not run."""
    every = PERIODS[RISK_METRICS_ROLLUP_TODAY]
    with scheduled_run(self, lock=RISK_METRICS_ROLLUP_LOCK, every=every, due=due) as slot:
        if slot is None:
            return None
        risk_metrics_backlog_redo()
        today = timezone.now().astimezone(UTC).date()
        risk_metrics_rollup(day=today - timedelta(days=1))
        return risk_metrics_rollup(day=today)


@shared_task(name=VIEWS_REFRESH, acks_late=True, bind=True, max_retries=None)
def views_refresh_task(self: Any, due: str | None = None) -> bool:
    """Both materialized views, CONCURRENTLY. Returns False if not run."""
    with scheduled_run(self, lock=VIEWS_REFRESH, every=PERIODS[VIEWS_REFRESH], due=due) as slot:
        if slot is None:
            return False
        views_refresh()
        return True


@shared_task(name=RISK_LIMITS_CHECK, acks_late=True, bind=True, max_retries=None)
def risk_limits_check_task(self: Any, due: str | None = None) -> int | None:
    """Each bot against its risk limits. Returns the number of risk events, None if not run."""
    every = PERIODS[RISK_LIMITS_CHECK]
    with scheduled_run(self, lock=RISK_LIMITS_CHECK, every=every, due=due) as slot:
        if slot is None:
            return None
        return len(risk_limits_check())


@shared_task(name=HEARTBEAT_STALE_CHECK, acks_late=True, bind=True, max_retries=None)
def heartbeat_stale_check_task(self: Any, due: str | None = None) -> int | None:
    """Bots whose heartbeat is stale. Returns the number of risk events, None if not run."""
    every = PERIODS[HEARTBEAT_STALE_CHECK]
    with scheduled_run(self, lock=HEARTBEAT_STALE_CHECK, every=every, due=due) as slot:
        if slot is None:
            return None
        return len(heartbeat_stale_check())


@shared_task(name=SUMMARY_CHECKPOINTS_REFRESH, acks_late=True, bind=True, max_retries=None)
def summary_checkpoints_refresh_task(self: Any, due: str | None = None) -> int | None:
    """Every bot's summary checkpoint that does not serve or is cut before today, rebuilt, so
    that the day's reads of bot summaries combine it with today's trades only. Returns the
    number armed, None if not run."""
    every = PERIODS[SUMMARY_CHECKPOINTS_REFRESH]
    with scheduled_run(self, lock=SUMMARY_CHECKPOINTS_REFRESH, every=every, due=due) as slot:
        if slot is None:
            return None
        return bot_summary_checkpoints_refresh()


@shared_task(name=DERIVED_CANDLES_CATCH_UP, acks_late=True, bind=True, max_retries=None)
def derived_candles_catch_up_task(self: Any, due: str | None = None) -> int | None:
    """Every market's 1m candles not yet in its derived candles (5m to 1d) derived, so that a
    read of a higher timeframe rarely finds work to do. Returns the markets caught up, None if
    not run."""
    every = PERIODS[DERIVED_CANDLES_CATCH_UP]
    with scheduled_run(self, lock=DERIVED_CANDLES_CATCH_UP, every=every, due=due) as slot:
        if slot is None:
            return None
        return derived_candles_catch_up_all()


@shared_task(name=PREDICTIONS_MAINTAIN, acks_late=True, bind=True, max_retries=None)
def predictions_maintain_task(self: Any, due: str | None = None) -> tuple[int, int] | None:
    """The prediction cache's upkeep: predictions whose target candle has come scored, then
    those past their model's TTL deleted. Returns (scored, expired), None if not run."""
    every = PERIODS[PREDICTIONS_MAINTAIN]
    with scheduled_run(self, lock=PREDICTIONS_MAINTAIN, every=every, due=due) as slot:
        if slot is None:
            return None
        return predictions_score(), predictions_expire()


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


REPORT_DAILY = "analytics.report_daily"
REPORT_WEEKLY = "analytics.report_weekly"


def _report(period: str) -> list[str]:
    """No scheduled-run slot: the reports' own key (list, period, start), locked while a list
    is sent, makes a second beat's copy or a redelivery send nothing."""
    bounds = last_complete_period(period, timezone.now())
    return [outcome for _, outcome in send_reports(period, bounds.start.date())]


@shared_task(name=REPORT_DAILY, acks_late=True)
def report_daily() -> list[str]:
    """Yesterday's report to each active daily recipient list (each list once per day)."""
    return _report(ReportPeriod.DAILY)


@shared_task(name=REPORT_WEEKLY, acks_late=True)
def report_weekly() -> list[str]:
    """Last ISO week's report to each active weekly recipient list (each list once per week)."""
    return _report(ReportPeriod.WEEKLY)
