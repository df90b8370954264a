"""Scheduled runs (audit/scheduled.py): each due slot of a scheduled task does its work once.

A slot is the period of its task that beat sent the message in (the ``published_at`` header
every message carries). Two beats send two messages for one firing: the second finds the slot
claimed and does nothing. A run that finds the task's lock held comes back (a retry carrying the
slot) until the holder is gone, and gives up after the task's period.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from celery import signals
from celery.exceptions import Retry
from celery.schedules import crontab
from django.conf import settings
from django.db import connection
from redis import Redis

from analytics import tasks
from analytics.models import BotDailyPerformance, PortfolioSnapshot
from analytics.services import portfolio_snapshot_fill
from analytics.services.schedule import SCHEDULE
from analytics.services.snapshots import snapshot_buckets_to_fill
from atb_site.celery import PUBLISHED_AT_HEADER
from audit import tasks as audit_tasks
from audit.models import Backup, ScheduledRun
from audit.scheduled import BEAT_HEADER, due_slot, slot_floor
from tests.analytics.test_tasks import blocked_on_the_snapshot_table, lock_held_elsewhere
from tests.factories import make_bot, make_closed_trade, make_position
from trading.models import RiskMetric

SENT = "2026-12-07T09:07:31.250000+00:00"  # when beat sent the message
HEADERS = {PUBLISHED_AT_HEADER: SENT, BEAT_HEADER: "beat's entry"}  # as beat sends it
SCHEDULED_TASKS: list[Any] = [
    tasks.portfolio_snapshot,
    tasks.risk_metrics_rollup_today,
    tasks.summary_checkpoints_refresh_task,
    tasks.views_refresh_task,
    tasks.risk_limits_check_task,
    tasks.heartbeat_stale_check_task,
    tasks.derived_candles_catch_up_task,
    audit_tasks.data_quality_check_task,
    audit_tasks.market_data_maintenance_task,
]
PERIODS = {**tasks.PERIODS, **audit_tasks.PERIODS}
# The slot each task's message sent at 09:07:31.25 is due for.
SLOTS = {
    "analytics.portfolio_snapshot": datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
    "analytics.risk_metrics_rollup_today": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    "analytics.summary_checkpoints_refresh": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    "analytics.views_refresh": datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
    "analytics.risk_limits_check": datetime(2026, 12, 7, 9, 7, tzinfo=UTC),
    "analytics.heartbeat_stale_check": datetime(2026, 12, 7, 9, 7, tzinfo=UTC),
    "analytics.derived_candles_catch_up": datetime(2026, 12, 7, 9, 7, tzinfo=UTC),
    "analytics.predictions_maintain": datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
    "audit.data_quality_check": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    "audit.db_backup": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    "audit.market_data_maintenance": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
}


def claims() -> list[tuple[str, datetime]]:
    return list(ScheduledRun.objects.order_by("task", "slot").values_list("task", "slot"))


# --- the slot --------------------------------------------------------------------------------


def test_every_message_is_stamped_with_its_publication_time() -> None:
    queue = "test-stamp"
    seen: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
        seen.append(dict(headers or {}))

    signals.after_task_publish.connect(capture)
    before = datetime.now(UTC)
    try:
        tasks.portfolio_snapshot.apply_async(queue=queue)
        tasks.portfolio_snapshot.apply_async(queue=queue, headers=HEADERS)
    finally:
        signals.after_task_publish.disconnect(capture)
        with Redis.from_url(settings.CELERY_BROKER_URL) as broker:
            broker.delete(queue)
    after = datetime.now(UTC)

    stamped = datetime.fromisoformat(seen[0][PUBLISHED_AT_HEADER])
    assert before <= stamped <= after
    assert seen[1][PUBLISHED_AT_HEADER] == SENT  # a sender's own stamp is kept


def test_the_due_slot_is_the_period_of_the_clock_the_message_was_sent_in() -> None:
    class Request(dict[str, Any]):
        pass

    sent = Request(published_at=SENT)
    assert {name: due_slot(sent, every) for name, every in PERIODS.items()} == SLOTS
    # A retry names its slot; a direct call (no message) runs for the current period.
    assert due_slot(sent, timedelta(minutes=5), "2026-12-07T08:55:00+00:00") == datetime(
        2026, 12, 7, 8, 55, tzinfo=UTC
    )
    now = datetime.now(UTC)
    assert due_slot(Request(), timedelta(hours=1)) in {
        slot_floor(now, timedelta(hours=1)),
        slot_floor(now, timedelta(hours=1)) + timedelta(hours=1),
    }


def test_every_beat_entry_fires_once_in_each_period_of_its_task() -> None:
    """The slot is only an identity of the firing if the entry fires once per period. Entries
    of tasks without a slot (alerts' interval sweeps, the reports keyed by their period) are
    not slotted; every slotted task has its entry."""
    slotted = [entry for entry in SCHEDULE if entry.name in PERIODS]
    assert sorted(entry.name for entry in slotted) == sorted(PERIODS)
    for entry in slotted:
        minutes = sorted(cast(Any, crontab(minute=entry.crontab_minute)).minute)
        every = int(PERIODS[entry.name].total_seconds() // 60)
        assert [m // every for m in minutes] == list(range(60 // every)), entry.name


# --- two beats: the second copy of a slot does nothing ---------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task", SCHEDULED_TASKS, ids=lambda t: t.name)
def test_a_second_copy_of_a_slot_does_nothing(task: Any) -> None:
    bot = make_bot("twice")
    make_closed_trade(bot, pnl_usd=Decimal("5"))

    first = task.apply(headers=HEADERS)
    written = (
        list(PortfolioSnapshot.objects.values_list("ts", "taken_at")),
        list(RiskMetric.objects.values_list("bot_id", "date", "computed_at")),
    )
    second = task.apply(headers=HEADERS)

    assert first.state == second.state == "SUCCESS"
    assert first.result is not None and first.result is not False
    assert second.result is None or second.result is False
    assert claims() == [(task.name, SLOTS[task.name])]
    assert (
        list(PortfolioSnapshot.objects.values_list("ts", "taken_at")),
        list(RiskMetric.objects.values_list("bot_id", "date", "computed_at")),
    ) == written


@pytest.mark.django_db(transaction=True)
def test_two_beats_snapshot_rollup_once_per_slot() -> None:
    bot = make_bot("pinned")
    make_closed_trade(bot, pnl_usd=Decimal("5"))
    for _ in range(2):
        tasks.portfolio_snapshot.apply(headers=HEADERS)
        tasks.risk_metrics_rollup_today.apply(headers=HEADERS)
    # The next firing of each is a slot of its own.
    later = {**HEADERS, PUBLISHED_AT_HEADER: "2026-12-07T09:15:00.100000+00:00"}
    tasks.portfolio_snapshot.apply(headers=later)
    tasks.risk_metrics_rollup_today.apply(headers=later)

    assert list(PortfolioSnapshot.objects.order_by("ts").values_list("ts", flat=True)) == [
        datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
        datetime(2026, 12, 7, 9, 10, tzinfo=UTC),  # the empty bucket before 09:15, filled
        datetime(2026, 12, 7, 9, 15, tzinfo=UTC),
    ]
    assert claims() == [
        ("analytics.portfolio_snapshot", datetime(2026, 12, 7, 9, 5, tzinfo=UTC)),
        ("analytics.portfolio_snapshot", datetime(2026, 12, 7, 9, 15, tzinfo=UTC)),
        ("analytics.risk_metrics_rollup_today", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),
        ("analytics.risk_metrics_rollup_today", datetime(2026, 12, 7, 9, 15, tzinfo=UTC)),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_run_queued_on_demand_always_does_its_work() -> None:
    """An import queues the views' refresh: beat's refresh of the slot must not swallow it."""
    bot = make_bot("imported")
    assert tasks.views_refresh_task.apply(headers=HEADERS).result is True
    make_closed_trade(bot, pnl_usd=Decimal("7"))

    on_demand = tasks.views_refresh_task.apply(headers={PUBLISHED_AT_HEADER: SENT})

    assert on_demand.result is True
    assert list(BotDailyPerformance.objects.values_list("bot_id", "net_pnl_usd")) == [
        ("imported", Decimal("7"))
    ]
    assert claims() == [("analytics.views_refresh", datetime(2026, 12, 7, 9, 5, tzinfo=UTC))]


@pytest.fixture
def backup_dir(settings: Any, tmp_path: Path) -> Path:
    settings.BACKUP_DIR = str(tmp_path / "backups")
    settings.PG_BIN_DIR = ""
    return tmp_path / "backups"


@pytest.mark.django_db(transaction=True)
def test_two_beats_back_up_once_per_slot(backup_dir: Path) -> None:
    make_bot("backed_up")
    first = audit_tasks.db_backup_task.apply(headers=HEADERS)
    second = audit_tasks.db_backup_task.apply(headers=HEADERS)

    backup = Backup.objects.get()
    assert (first.result, second.result) == (backup.pk, None)
    assert backup.verified
    assert claims() == [("audit.db_backup", datetime(2026, 12, 7, 9, 0, tzinfo=UTC))]


# --- a held lock: come back until the holder is gone -----------------------------------------


# Retries before a run gives up on a lock held all along: 2 + 4 + 8 + 16 + 32 + 60 + 60 ... s
# may not pass the task's period (at least a minute).
RETRIES_BEFORE_GIVING_UP = {
    timedelta(minutes=1): [2, 4, 8, 16],  # 30 s; 32 more would pass 60
    timedelta(minutes=5): [2, 4, 8, 16, 32, 60, 60, 60],  # 242 s; 60 more would pass 300
    timedelta(minutes=15): [2, 4, 8, 16, 32] + [60] * 13,  # 842 s
    timedelta(hours=1): [2, 4, 8, 16, 32] + [60] * 58,  # 3,542 s
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task", SCHEDULED_TASKS, ids=lambda t: t.name)
def test_a_run_that_finds_the_lock_held_comes_back_for_its_slot_then_gives_up(
    task: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Run eagerly, each retry runs at once (its countdown only logged): the whole series."""
    make_bot("locked")
    lock = tasks.RISK_METRICS_ROLLUP_LOCK if task is tasks.risk_metrics_rollup_today else task.name
    slot = SLOTS[task.name].isoformat()
    with lock_held_elsewhere(lock):
        result = task.apply(headers=HEADERS)

    assert result.state == "SUCCESS"
    assert result.result is None or result.result is False
    expected = RETRIES_BEFORE_GIVING_UP[PERIODS[task.name]]
    # Every retry is for the slot the message was due for (a retry's message has no header of
    # beat's: the slot goes in its ``due`` argument).
    assert [r.getMessage() for r in caplog.records if r.name == "audit.scheduled"] == [
        *(
            f"{task.name} of {slot}: another worker holds its lock, {lock}; again in {n} s"
            for n in expected
        ),
        f"{task.name} of {slot} given up: {lock} stayed held for {sum(expected)} s "
        f"({len(expected)} retries)",
    ]
    assert claims() == []
    assert not PortfolioSnapshot.objects.exists()
    assert not RiskMetric.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_live_holder_keeps_winning_and_the_retry_then_does_nothing() -> None:
    """Two beats' copies at once: the first holds the lock, blocked on the table; the second
    comes back; once the first has committed the slot, the retry finds it claimed."""
    make_bot("holder")
    results: list[Any] = []

    def first_copy() -> None:
        try:
            results.append(tasks.portfolio_snapshot.apply(headers=HEADERS).result)
        finally:
            connection.close()

    # The second copy, called directly, raises the Retry a worker would send.
    with blocked_on_the_snapshot_table(first_copy), pytest.raises(Retry):
        tasks.portfolio_snapshot(due=SENT)

    retried = tasks.portfolio_snapshot(due=SENT)

    assert results == ["2026-12-07T09:05:00+00:00"]
    assert retried is None
    assert list(PortfolioSnapshot.objects.values_list("ts", flat=True)) == [
        datetime(2026, 12, 7, 9, 5, tzinfo=UTC)
    ]
    assert claims() == [("analytics.portfolio_snapshot", datetime(2026, 12, 7, 9, 5, tzinfo=UTC))]


# --- missed buckets --------------------------------------------------------------------------


@pytest.fixture
def snapshot_at_0830(db: None) -> Iterator[None]:
    make_bot("filled")
    portfolio_snapshot_fill(
        due=datetime(2026, 12, 7, 8, 30, tzinfo=UTC), at=datetime(2026, 12, 7, 8, 30, 2, tzinfo=UTC)
    )
    yield


def test_a_run_fills_the_empty_buckets_since_the_last_snapshot(snapshot_at_0830: None) -> None:
    at = datetime(2026, 12, 7, 9, 5, 1, tzinfo=UTC)
    make_position(make_bot("later"), current_price=Decimal("61000"))

    written = portfolio_snapshot_fill(due=datetime(2026, 12, 7, 8, 47, 12, tzinfo=UTC), at=at)

    # 08:35 to 08:45, each with the figures read at 09:05:01; nothing after the due bucket.
    rows = list(
        PortfolioSnapshot.objects.order_by("ts").values_list(
            "ts", "taken_at", "long_exposure_usd", "active_bots"
        )
    )
    assert [row.ts for row in written] == [
        datetime(2026, 12, 7, 8, 35, tzinfo=UTC),
        datetime(2026, 12, 7, 8, 40, tzinfo=UTC),
        datetime(2026, 12, 7, 8, 45, tzinfo=UTC),
    ]
    assert rows == [
        (
            datetime(2026, 12, 7, 8, 30, tzinfo=UTC),
            datetime(2026, 12, 7, 8, 30, 2, tzinfo=UTC),
            Decimal("0"),
            1,
        ),
        *[(datetime(2026, 12, 7, 8, m, tzinfo=UTC), at, Decimal("61000"), 2) for m in (35, 40, 45)],
    ]


def test_the_fill_goes_back_one_hour_at_most(snapshot_at_0830: None) -> None:
    buckets = snapshot_buckets_to_fill(due=datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    assert buckets == [
        datetime(2026, 12, 7, 10, 0, tzinfo=UTC) + timedelta(minutes=5 * n) for n in range(13)
    ]
    # No snapshot before it at all: the due bucket alone.
    assert snapshot_buckets_to_fill(due=datetime(2026, 12, 7, 8, 0, tzinfo=UTC)) == [
        datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    ]
    # The last snapshot is the bucket before: nothing to fill.
    assert snapshot_buckets_to_fill(due=datetime(2026, 12, 7, 8, 35, tzinfo=UTC)) == [
        datetime(2026, 12, 7, 8, 35, tzinfo=UTC)
    ]


@pytest.mark.django_db(transaction=True)
def test_a_worker_s_backup_outlasts_its_idle_in_transaction_limit(
    backup_dir: Path, settings: Any, tmp_path: Path
) -> None:
    """The slot's claim and the lock wait, idle in their transaction, for the whole pg_dump: a
    worker's idle-in-transaction limit shorter than the dump must not end the backup."""
    from atb_site.db.session import process_kind, set_process_kind
    from audit.backups.pg import pg_tools_for

    if settings.DATABASE_PGBOUNCER:
        pytest.skip(
            "behind PgBouncer the worker's timeouts are its connect_query's, not this process's "
            "settings (tests/ops/test_pgbouncer.py reads them back)"
        )
    server_version = cast(Any, connection).pg_version
    real = pg_tools_for("pg_dump", server_version=server_version)[0].path.parent
    slow = tmp_path / "bin"
    slow.mkdir()
    for name in ("pg_restore", "psql"):
        (slow / name).symlink_to(real / name)
    pg_dump = slow / "pg_dump"  # the real one, two seconds late
    pg_dump.write_text(f'#!/bin/sh\nsleep 2\nexec "{real / "pg_dump"}" "$@"\n')
    pg_dump.chmod(0o755)
    settings.PG_BIN_DIR = str(slow)
    settings.DATABASE_SESSION_TIMEOUTS = {
        **settings.DATABASE_SESSION_TIMEOUTS,
        "worker": {
            "statement_timeout": 1800,
            "lock_timeout": 60,
            "idle_in_transaction_session_timeout": 1,
        },
    }
    make_bot("backed_up")
    before = process_kind()
    set_process_kind("worker")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            assert cursor.fetchone() == ("1s",)
        result = audit_tasks.db_backup_task.apply(headers=HEADERS)
    finally:
        set_process_kind(before)

    backup = Backup.objects.get()
    assert result.result == backup.pk, result.traceback
    assert backup.verified
    assert claims() == [("audit.db_backup", datetime(2026, 12, 7, 9, 0, tzinfo=UTC))]
