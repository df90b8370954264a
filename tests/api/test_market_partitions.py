"""trading.market_data partitioned by month (trading/services/partitions.py, migration 0011):
the conversion keeps every row, a candle of a month without a partition is never refused (the
generic path, the COPY fast path, a later chunk of a streamed batch), two sessions making the
same month at once both succeed, the maintenance task makes months ahead and clusters closed
ones, and retention drops whole months past MARKET_DATA_RETENTION_DAYS with a system event."""

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from audit.models import SystemEvent
from audit.services.market_data import market_data_maintain
from tests.api.test_market_fast import generic_refused  # noqa: F401 - a fixture
from tests.test_config_limits_migration import migrate
from trading.models import MarketData
from trading.services.market import market_data_insert_many
from trading.services.partitions import (
    market_data_partition_keys_named,
    market_data_partitions,
    market_data_partitions_create,
    partition_name,
)

MARKET = "/api/v1/market-data/"
BEFORE = [("trading", "0010_derived_candles")]
ROW_DIGEST = (
    "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.id)) FROM trading.market_data t"
)


def scalar(sql: str, params: Any = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def digest() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(ROW_DIGEST)
        count, md5 = cursor.fetchone() or (0, "")
    return int(count), str(md5)


def names() -> list[str]:
    return [p.name for p in market_data_partitions()]


def candle(
    ts: datetime, **fields: Any
) -> tuple[str, str, str, datetime, str, str, str, str, str, str]:
    values = {"symbol": "BTC/USDT", "open": "100", "high": "110", "low": "90", "close": "105"}
    values.update(fields)
    return (
        str(values["symbol"]), "binance", "1m", ts,
        str(values["open"]), str(values["high"]), str(values["low"]), str(values["close"]),
        "12.5", "{}",
    )  # fmt: skip


# --- the migration ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_populated_table_keeping_every_row() -> None:
    apps = migrate(BEFORE)
    try:
        assert (
            scalar("SELECT relkind FROM pg_class WHERE oid = 'trading.market_data'::regclass")
            == "r"
        )
        Old = apps.get_model("trading", "MarketData")
        rows = [
            Old(
                symbol=symbol,
                exchange="binance",
                timeframe="1m",
                ts=ts,
                open=Decimal("100.0000000001"),
                high=Decimal("110"),
                low=Decimal("90"),
                close=Decimal(95 + i % 15),
                volume=Decimal("12.5"),
                indicators={"rsi": i, "note": "tab\there"} if i % 3 else {},
            )
            for i, (symbol, ts) in enumerate(
                (symbol, datetime(year, month, 28, 23, minute, tzinfo=UTC))
                for symbol in ("BTC/USDT", "ETH/USDT")
                for year, month in ((1970, 1), (2025, 12), (2026, 1), (2026, 2), (9998, 12))
                for minute in range(0, 60, 7)
            )
        ]
        Old.objects.bulk_create(rows)
        Old.objects.filter(ts__year=2026, ts__month=1, symbol="ETH/USDT").delete()  # id gaps
        before = digest()
        assert before[0] == 2 * 5 * 9 - 9
        largest = scalar("SELECT max(id) FROM trading.market_data")

        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        assert digest() == before
        assert (
            scalar("SELECT relkind FROM pg_class WHERE oid = 'trading.market_data'::regclass")
            == "p"
        )
        months = {p.month for p in market_data_partitions()}
        # Copied in key order: the closed months count as clustered, the future one not.
        clustered = {p.month: p.clustered for p in market_data_partitions()}
        assert clustered[date(1970, 1, 1)] and clustered[date(2025, 12, 1)]
        assert not clustered[date(9998, 12, 1)]
        assert {date(1970, 1, 1), date(2025, 12, 1), date(2026, 1, 1), date(9998, 12, 1)} <= months
        # Every row in its month's partition, none anywhere else.
        assert (
            scalar(
                "SELECT count(*) FROM trading.market_data "
                "WHERE tableoid::regclass::text <> "
                "'trading.market_data_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYY_MM')"
            )
            == 0
        )
        # The uniqueness and the checks are the parent's, as before.
        assert (
            scalar(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'trading.market_data'::regclass "
                "AND conname = 'market_data_candle_uniq'"
            )
            == "UNIQUE (symbol, exchange, timeframe, ts)"
        )
        assert (
            scalar(
                "SELECT count(*) FROM pg_constraint "
                "WHERE conrelid = 'trading.market_data'::regclass AND contype = 'c'"
            )
            == 6
        )
        # Ids go on past the largest one kept.
        made = MarketData.objects.create(
            symbol="SOL/USDT", exchange="binance", timeframe="1m",
            ts=datetime(2026, 1, 1, tzinfo=UTC), open=1, high=1, low=1, close=1,
        )  # fmt: skip
        assert made.pk == largest + 1
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


# --- a month without a partition is never refused ---------------------------------------------


def test_the_generic_path_makes_the_months_it_needs(db: None) -> None:
    assert "market_data_p2019_03" not in names()
    rows = [
        candle(datetime(2019, 3, 31, 23, 59, tzinfo=UTC)),
        candle(datetime(2019, 5, 1, tzinfo=UTC)),
    ]
    counts = market_data_insert_many(rows=rows)
    assert (counts.inserted, counts.duplicates) == (2, 0)
    # Only the months holding a candle: April, between them, is not made.
    assert {"market_data_p2019_03", "market_data_p2019_05"} <= set(names())
    assert "market_data_p2019_04" not in names()
    assert scalar("SELECT count(*) FROM trading.market_data_p2019_05") == 1
    # Again: both stored, nothing made.
    assert market_data_insert_many(rows=rows).duplicates == 2


def _body(times: list[datetime]) -> bytes:
    return json.dumps(
        [
            {
                "symbol": "BTC/USDT",
                "exchange": "binance",
                "timeframe": "1m",
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "open": "100",
                "high": "110",
                "low": "90",
                "close": "105",
                "volume": "1",
            }
            for ts in times
        ]
    ).encode()


@pytest.mark.usefixtures("generic_refused")  # the fast path must take it all
def test_the_fast_path_makes_the_months_it_needs(bot_client: APIClient) -> None:
    assert "market_data_p2018_07" not in names()
    response = bot_client.post(
        MARKET, _body([datetime(2018, 7, 1, tzinfo=UTC)]), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"inserted": 1, "duplicates": 0}
    assert scalar("SELECT count(*) FROM trading.market_data_p2018_07") == 1


@pytest.mark.usefixtures("generic_refused")
def test_a_later_chunk_of_a_streamed_batch_in_a_new_month(bot_client: APIClient) -> None:
    """The first 1,000 candles' month is made before the COPY; the next chunk's month is not:
    PostgreSQL refuses it mid-COPY, the batch is undone and takes the sorted path, which makes
    the month. Every candle stored, once."""
    start = datetime(2017, 1, 31, 23, 59, tzinfo=UTC) - timedelta(minutes=1_199)
    times = [start + timedelta(minutes=n) for n in range(1_300)]
    assert times[1_000].month == 1 and times[1_200].month == 2
    response = bot_client.post(MARKET, _body(times), content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"inserted": 1_300, "duplicates": 0}
    assert scalar("SELECT count(*) FROM trading.market_data_p2017_01") == 1_200
    assert scalar("SELECT count(*) FROM trading.market_data_p2017_02") == 100


def test_a_refused_candle_in_a_new_month_is_named_and_leaves_nothing(
    bot_client: APIClient,
) -> None:
    body = json.loads(
        _body([datetime(2016, 2, 1, tzinfo=UTC), datetime(2016, 2, 1, 0, 1, tzinfo=UTC)])
    )
    body[1]["low"] = "200"  # above the high
    response = bot_client.post(MARKET, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "low"
    assert MarketData.objects.filter(ts__year=2016).count() == 0


# --- two sessions make the same month at once -------------------------------------------------


def _in_thread(work: Callable[[], Any], out: dict[str, Any], key: str) -> threading.Thread:
    def run() -> None:
        try:
            out[key] = work()
        except Exception as exc:
            out[key] = exc
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_two_sessions_making_the_same_month_both_succeed() -> None:
    """Session A makes March 2015 and holds its transaction open; B, making it too, waits (on
    the creators' lock) and, once A commits, finds it and writes its candle into it."""
    month = date(2015, 3, 1)
    made_a = threading.Event()
    release_a = threading.Event()
    out: dict[str, Any] = {}

    def session_a() -> list[str]:
        with transaction.atomic():
            created = market_data_partitions_create(months=[month])
            market_data_insert_many(rows=[candle(datetime(2015, 3, 1, tzinfo=UTC))])
            made_a.set()
            assert release_a.wait(10)
        return created

    def session_b() -> tuple[list[str], int]:
        assert made_a.wait(10)
        with transaction.atomic():
            created = market_data_partitions_create(months=[month])
            inserted = market_data_insert_many(
                rows=[candle(datetime(2015, 3, 1, 0, 1, tzinfo=UTC))]
            ).inserted
        return created, inserted

    a = _in_thread(session_a, out, "a")
    assert made_a.wait(10)
    b = _in_thread(session_b, out, "b")
    # B waits on the creators' advisory lock while A holds it.
    deadline = time.monotonic() + 10
    while not scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
        assert time.monotonic() < deadline, "B never waited for A"
        time.sleep(0.02)
    release_a.set()
    a.join(10)
    b.join(10)
    assert out["a"] == [partition_name(month)]
    assert out["b"] == ([], 1)
    assert scalar("SELECT count(*) FROM trading.market_data_p2015_03") == 2
    assert names().count("market_data_p2015_03") == 1


@pytest.mark.django_db(transaction=True)
def test_two_batches_of_a_new_month_at_once_both_land() -> None:
    """No orchestration: two sessions each send a batch of a month without a partition."""
    out: dict[str, Any] = {}
    start = threading.Barrier(2)

    def batch(minute: int) -> Callable[[], int]:
        def send() -> int:
            start.wait(10)
            rows = [candle(datetime(2014, 6, 1, 0, minute, tzinfo=UTC), symbol=f"S{minute}/USDT")]
            return market_data_insert_many(rows=rows).inserted

        return send

    threads = [_in_thread(batch(m), out, str(m)) for m in (1, 2)]
    for thread in threads:
        thread.join(20)
    assert out == {"1": 1, "2": 1}
    assert scalar("SELECT count(*) FROM trading.market_data_p2014_06") == 2


# --- maintenance: ahead, clustered, retention -------------------------------------------------


NOW = datetime(2026, 12, 7, 9, 23, tzinfo=UTC)


def test_maintenance_makes_months_ahead_and_clusters_closed_ones(
    db: None, settings: SettingsWrapper
) -> None:
    settings.MARKET_DATA_RETENTION_DAYS = None
    # November, closed a week before NOW, written minute by minute across two markets.
    rows = [
        candle(datetime(2026, 11, 30, 0, 0, tzinfo=UTC) + timedelta(minutes=m), symbol=s)
        for m in range(200)
        for s in ("B/USDT", "A/USDT")
    ]
    market_data_insert_many(rows=rows)
    report = market_data_maintain(now=NOW)
    assert {"market_data_p2026_12", "market_data_p2027_01", "market_data_p2027_02"} <= set(names())
    assert "market_data_p2026_11" in report.clustered
    assert "market_data_p2026_12" not in report.clustered  # still open
    # In the candle key's order on disk: A's 200 candles first, then B's.
    with connection.cursor() as cursor:
        cursor.execute("SELECT symbol FROM trading.market_data_p2026_11 ORDER BY ctid")
        assert [s for (s,) in cursor.fetchall()] == ["A/USDT"] * 200 + ["B/USDT"] * 200
    assert {p.name: p.clustered for p in market_data_partitions()}["market_data_p2026_11"]
    # Clustered once: the next run leaves it.
    assert market_data_maintain(now=NOW).clustered == []


def test_retention_drops_whole_months_past_it_and_says_so(
    db: None, settings: SettingsWrapper
) -> None:
    settings.MARKET_DATA_RETENTION_DAYS = 40
    for day in (date(2026, 9, 15), date(2026, 10, 20), date(2026, 11, 2)):
        market_data_insert_many(
            rows=[
                candle(datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=m))
                for m in range(1_000)
            ]
        )
    kept_before = MarketData.objects.filter(ts__gte=datetime(2026, 10, 1, tzinfo=UTC)).count()
    started = time.perf_counter()
    report = market_data_maintain(now=NOW)
    # October ended 37 days before NOW: kept, though its first days are older than 40 days.
    assert [d.partition for d in report.dropped if d.month >= date(2026, 9, 1)] == [
        "market_data_p2026_09"
    ]
    assert "market_data_p2026_09" not in names()
    assert "market_data_p2026_10" in names()
    assert MarketData.objects.filter(ts__lt=datetime(2026, 10, 1, tzinfo=UTC)).count() == 0
    assert MarketData.objects.count() == kept_before == 2_000
    assert time.perf_counter() - started < 5  # the whole run, clustering October included
    event = SystemEvent.objects.get(event_type="market_data_months_dropped")
    assert event.component == "market_data"
    september = [m for m in event.details["months"] if m["month"] == "2026-09"]
    assert september == [
        {"partition": "market_data_p2026_09", "month": "2026-09", "rows": 1_000,
         "bytes": september[0]["bytes"]}
    ]  # fmt: skip
    assert september[0]["bytes"] > 0
    assert event.details["retention_days"] == 40
    # A candle of a dropped month comes back: its month is made again, not refused.
    assert market_data_insert_many(rows=[candle(datetime(2026, 9, 15, tzinfo=UTC))]).inserted == 1


def test_retention_unset_keeps_everything(db: None, settings: SettingsWrapper) -> None:
    settings.MARKET_DATA_RETENTION_DAYS = None
    market_data_insert_many(rows=[candle(datetime(2001, 1, 1, tzinfo=UTC))])
    report = market_data_maintain(now=NOW)
    assert report.dropped == []
    assert "market_data_p2001_01" in names()
    assert not SystemEvent.objects.filter(event_type="market_data_months_dropped").exists()


def test_keys_added_to_the_parent_later_get_the_partitions_names(db: None) -> None:
    """As the data set's loader does around its COPY: the candle key dropped and added again;
    PostgreSQL names the partitions' parts itself, and they are renamed to the convention."""
    market_data_partitions_create(months=[date(2013, 4, 1)])
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE trading.market_data DROP CONSTRAINT market_data_candle_uniq")
        cursor.execute(
            "ALTER TABLE trading.market_data ADD CONSTRAINT market_data_candle_uniq "
            "UNIQUE (symbol, exchange, timeframe, ts)"
        )
    assert scalar("SELECT to_regclass('trading.market_data_candle_uniq_p2013_04')") is None
    assert market_data_partition_keys_named() >= 1
    assert scalar("SELECT to_regclass('trading.market_data_candle_uniq_p2013_04')::text") == (
        "trading.market_data_candle_uniq_p2013_04"
    )
    assert market_data_partition_keys_named() == 0
