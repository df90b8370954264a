"""The scheduled tasks: idempotent, one at a time (advisory lock), queued on commit."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from celery.exceptions import Retry
from django.db import connection, transaction
from django.utils import timezone

from analytics import tasks
from analytics.models import BotDailyPerformance, PortfolioSnapshot
from analytics.services import portfolio_snapshot_take, snapshot_bucket
from atb_site.celery import enqueue_on_commit
from atb_site.db.base import direct_settings_dict
from audit.models import RiskEvent
from audit.tasks import data_quality_check_task
from tests.factories import make_bot, make_closed_trade, make_position
from trading.db import advisory_lock, advisory_lock_key
from trading.models import RiskMetric, RiskMetricsBacklog
from trading.services.ingest import risk_metrics_backlog_mark


def other_connection() -> psycopg.Connection:
    """A second session on the test database, in autocommit (outside Django's connection), on
    the server itself: behind PgBouncer a session-level lock taken here would otherwise stay on
    a pooled server connection after this session ends."""
    settings = direct_settings_dict()
    return psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )


@contextmanager
def lock_held_elsewhere(name: str) -> Iterator[None]:
    with other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_lock_key(name)])
        yield


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {condition}")
        time.sleep(0.05)


def backend_waiting_for_a_lock() -> bool:
    # A fresh session each time: pg_stat_activity is frozen for the length of a transaction.
    with other_connection() as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@contextmanager
def blocked_on_the_snapshot_table(run: Callable[[], None]) -> Iterator[None]:
    """Start ``run`` in a thread: a snapshot that takes its task's lock, then waits on
    analytics.portfolio_snapshots, which the test holds until the block ends."""
    with other_connection() as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE analytics.portfolio_snapshots IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=run)
        thread.start()
        try:
            wait_for(backend_waiting_for_a_lock)
            yield
        finally:
            blocker.execute("COMMIT")
            thread.join(timeout=10)


# --- the lock --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_advisory_lock_is_taken_once_and_freed_with_its_transaction() -> None:
    with advisory_lock("test.lock") as first:
        assert first is True
        with other_connection() as other:
            key = advisory_lock_key("test.lock")
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone() == (False,)
    with other_connection() as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone() == (True,)


def test_advisory_lock_keys_are_stable_64_bit_numbers() -> None:
    key = advisory_lock_key("analytics.portfolio_snapshot")
    assert key == advisory_lock_key("analytics.portfolio_snapshot")
    assert key != advisory_lock_key("analytics.views_refresh")
    assert -(2**63) <= key < 2**63


@pytest.mark.parametrize(
    ("task", "lock"),
    [
        (tasks.portfolio_snapshot, tasks.PORTFOLIO_SNAPSHOT),
        (tasks.risk_metrics_rollup_today, tasks.RISK_METRICS_ROLLUP_LOCK),
        (tasks.views_refresh_task, tasks.VIEWS_REFRESH),
        (tasks.risk_limits_check_task, tasks.RISK_LIMITS_CHECK),
        (tasks.heartbeat_stale_check_task, tasks.HEARTBEAT_STALE_CHECK),
        (data_quality_check_task, "audit.data_quality_check"),
    ],
)
def test_every_task_comes_back_while_another_worker_holds_its_lock(
    db: None, task: Any, lock: str, caplog: pytest.LogCaptureFixture
) -> None:
    make_bot("locked")
    with lock_held_elsewhere(lock), pytest.raises(Retry):  # a worker sends it again later
        task()

    assert "another worker holds its lock" in caplog.text
    assert not PortfolioSnapshot.objects.exists()
    assert not RiskMetric.objects.exists()


def test_every_task_is_late_acknowledged_and_named_explicitly() -> None:
    every: list[Any] = [
        tasks.portfolio_snapshot,
        tasks.risk_metrics_rollup_today,
        tasks.views_refresh_task,
        tasks.risk_limits_check_task,
        tasks.heartbeat_stale_check_task,
        data_quality_check_task,
        tasks.risk_metrics_backfill,
    ]
    assert [t.name for t in every] == [
        "analytics.portfolio_snapshot",
        "analytics.risk_metrics_rollup_today",
        "analytics.views_refresh",
        "analytics.risk_limits_check",
        "analytics.heartbeat_stale_check",
        "audit.data_quality_check",
        "analytics.risk_metrics_backfill",
    ]
    assert all(t.acks_late for t in every)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_snapshots_one_does_the_work_the_other_comes_back() -> None:
    make_bot("solo")
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(tasks.portfolio_snapshot())
        except Retry:
            results.append("retry")
        finally:
            connection.close()

    # The first run takes the task's lock, then waits on the table the test holds.
    with blocked_on_the_snapshot_table(run):
        second = threading.Thread(target=run)
        second.start()
        second.join(timeout=10)
        assert results == ["retry"]  # the second comes back later, without waiting

    assert len(results) == 2
    assert results[1] is not None
    assert PortfolioSnapshot.objects.count() == 1


# --- the snapshot ----------------------------------------------------------------------------


def test_snapshot_bucket_is_the_five_minute_floor() -> None:
    got = snapshot_bucket(datetime(2026, 1, 5, 12, 9, 59, 999999, tzinfo=UTC))
    assert got == datetime(2026, 1, 5, 12, 5, tzinfo=UTC)
    assert snapshot_bucket(datetime(2026, 1, 5, 12, 10, tzinfo=UTC)) == got + timedelta(minutes=5)


def test_two_snapshots_in_one_bucket_leave_one_row_with_the_latest_figures(db: None) -> None:
    bot = make_bot("snap")
    now = timezone.now()
    first = portfolio_snapshot_take(at=now)
    make_position(bot, current_price=Decimal("61000"))  # 1 x 61,000 long

    second = portfolio_snapshot_take(at=now + timedelta(microseconds=1))

    row = PortfolioSnapshot.objects.get()
    assert first.pk == second.pk == row.pk
    assert row.ts == snapshot_bucket(now)
    assert (row.total_equity_usd, row.long_exposure_usd, row.gross_exposure_usd) == (
        Decimal("10000"),
        Decimal("61000"),
        Decimal("61000"),
    )
    assert (row.open_positions, row.active_bots) == (1, 1)
    assert row.per_bot == {
        "snap": {
            "equity_usd": "10000.00000000",
            "equity_source": "realized",
            "exposure_usd": "61000.00000000",
            "pnl_today_usd": "0E-8",
            "open_positions": 1,
        }
    }


def test_the_snapshot_task_twice_in_a_bucket_leaves_one_row(db: None) -> None:
    make_bot("twice")
    first = tasks.portfolio_snapshot()
    second = tasks.portfolio_snapshot()
    assert first is not None
    if first != second:  # the run crossed into the next bucket: one row per bucket still
        assert PortfolioSnapshot.objects.count() == 2
    else:
        assert PortfolioSnapshot.objects.count() == 1
    assert first == snapshot_bucket(datetime.fromisoformat(first)).isoformat()


# --- the other tasks -------------------------------------------------------------------------


def test_the_rollup_task_writes_yesterdays_and_todays_rows_once(db: None) -> None:
    bot = make_bot("daily")
    now = timezone.now()
    today = now.astimezone(UTC).date()
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    make_closed_trade(
        bot,
        pnl_usd=Decimal("-25"),
        entry_time=midnight - timedelta(hours=2),
        exit_time=midnight - timedelta(hours=1),
    )

    assert tasks.risk_metrics_rollup_today() == 1
    # The next slot's run rewrites the same rows (the same slot's would do nothing).
    assert tasks.risk_metrics_rollup_today(due=(now + timedelta(minutes=15)).isoformat()) == 1

    got = list(RiskMetric.objects.order_by("date").values_list("date", "net_pnl_usd"))
    assert got == [(today - timedelta(days=1), Decimal("-25")), (today, Decimal("0"))]


def test_the_backfill_redoes_one_bots_days_from_a_late_trade_on(db: None) -> None:
    bot, other = make_bot("late"), make_bot("bystander")
    today = timezone.now().astimezone(UTC).date()
    three_days_ago = datetime.combine(today - timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    for who in (bot, other):
        make_closed_trade(
            who,
            pnl_usd=Decimal("10"),
            entry_time=three_days_ago - timedelta(days=2),
            exit_time=three_days_ago - timedelta(days=1),
        )
    tasks.risk_metrics_rollup_today()  # both chains exist up to today
    # A trade that closed three days ago arrives late, its day marked stale (as an import does):
    # today's rollup alone would not redo that day.
    make_closed_trade(
        bot,
        trade_id="late-1",
        pnl_usd=Decimal("-4"),
        entry_time=three_days_ago + timedelta(hours=1),
        exit_time=three_days_ago + timedelta(hours=2),
    )
    untouched = list(RiskMetric.objects.filter(bot=other).values_list("date", "computed_at"))

    risk_metrics_backlog_mark(bot_id=bot.bot_id, since=today - timedelta(days=3))

    assert tasks.risk_metrics_backfill() == 4

    pnl = dict(RiskMetric.objects.filter(bot=bot).values_list("date", "net_pnl_usd"))
    assert pnl[today - timedelta(days=3)] == Decimal("-4")
    assert [pnl[today - timedelta(days=n)] for n in (2, 1, 0)] == [Decimal("0")] * 3
    assert list(RiskMetric.objects.filter(bot=other).values_list("date", "computed_at")) == (
        untouched
    )


def test_the_backfill_comes_back_later_while_the_rollup_runs(db: None) -> None:
    bot = make_bot("waiting")
    risk_metrics_backlog_mark(bot_id=bot.bot_id, since=date(2026, 1, 1))
    with lock_held_elsewhere(tasks.RISK_METRICS_ROLLUP_LOCK), pytest.raises(Retry):
        tasks.risk_metrics_backfill()
    assert not RiskMetric.objects.exists()
    # The mark stays for the next run, should the retries run out.
    assert list(RiskMetricsBacklog.objects.values_list("bot_id", "since")) == [
        ("waiting", date(2026, 1, 1))
    ]


def test_the_refresh_task_brings_the_views_up_to_date(db: None) -> None:
    bot = make_bot("viewed")
    make_closed_trade(bot, pnl_usd=Decimal("12.5"))
    assert not BotDailyPerformance.objects.exists()

    assert tasks.views_refresh_task() is True

    assert list(BotDailyPerformance.objects.values_list("bot_id", "net_pnl_usd")) == [
        ("viewed", Decimal("12.5"))
    ]


def test_the_check_tasks_run_their_services(db: None) -> None:
    make_bot("quiet", status="paused")
    # Each check's run of a minute (its slot) runs once: three runs, three minutes.
    minute = [f"2026-12-07T09:0{n}:00+00:00" for n in range(3)]
    assert tasks.risk_limits_check_task(due=minute[0]) == 0
    assert tasks.heartbeat_stale_check_task(due=minute[0]) == 0
    assert data_quality_check_task() == 0
    assert not RiskEvent.objects.exists()

    # A bot over its position-size limit whose heartbeat stopped ten minutes ago.
    loud = make_bot(
        "loud",
        max_position_size_usd=Decimal("1000"),
        last_heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    make_position(loud)  # 1 BTC at 60,000

    assert tasks.risk_limits_check_task(due=minute[1]) == 1
    assert tasks.heartbeat_stale_check_task(due=minute[1]) == 1
    assert sorted(RiskEvent.objects.values_list("bot_id", "event_type")) == [
        ("loud", "position_size_limit"),
        ("loud", "stale_heartbeat"),
    ]
    # Run again: the same breaches, no new events.
    assert (
        tasks.risk_limits_check_task(due=minute[2]),
        tasks.heartbeat_stale_check_task(due=minute[2]),
    ) == (0, 0)


# --- queued on commit ------------------------------------------------------------------------


def test_enqueue_on_commit_sends_after_commit_and_never_after_rollback(
    db: None, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        tasks.portfolio_snapshot, "apply_async", lambda args, kwargs: sent.append((args, kwargs))
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(tasks.portfolio_snapshot)
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [((), {})]

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue_on_commit(tasks.portfolio_snapshot, 1)
        raise RuntimeError("rolled back")
    assert sent == [((), {})]
