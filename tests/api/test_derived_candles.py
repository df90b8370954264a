"""Higher timeframes derived from the 1m candles (issue 15, item 4), against a recomputation
in Python (Decimal) from the minutes stored: late minutes, minutes sent again with other
values, gaps, bot-sent candles of a higher timeframe, pages, and the round trips."""

import json
import random
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import make_bot
from tests.test_db_health_check import other_connection
from trading.models import DerivedCandle, DerivedCandleBacklog, MarketData
from trading.selectors.candles import candles_range
from trading.selectors.market import market_data_range
from trading.services.candles_derived import (
    LEVELS,
    derived_candles_catch_up,
    derived_candles_catch_up_all,
    derived_candles_lock_key,
    minute_spans,
)
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/market-data/"
DAY0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
STRIDES = {timeframe: stride for timeframe, stride, _ in LEVELS}
Bucket = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def minute(n: int, *, symbol: str = "BTC/USDT", **fields: Any) -> dict[str, Any]:
    """The 1m candle of minute ``n`` after DAY0 (prices from ``n``, unless given)."""
    body: dict[str, Any] = {
        "symbol": symbol,
        "exchange": "binance",
        "timeframe": "1m",
        "ts": iso(DAY0 + timedelta(minutes=n)),
        "open": f"{100 + n % 7}.5",
        "high": f"{120 + n % 11}.125",
        "low": f"{80 + n % 5}.0000000001",
        "close": f"{101 + n % 3}.25",
        "volume": f"{n % 13}.0000000003",
    }
    body.update(fields)
    return body


def random_minute(n: int, draw: random.Random, **fields: Any) -> dict[str, Any]:
    open_ = Decimal(draw.randint(1, 10**12)).scaleb(-10)
    close = Decimal(draw.randint(1, 10**12)).scaleb(-10)
    return minute(
        n,
        open=str(open_),
        high=str(max(open_, close) + Decimal(draw.randint(0, 10**6)).scaleb(-10)),
        low=str(
            max(min(open_, close) - Decimal(draw.randint(0, 10**6)).scaleb(-10), open_ * 0)
            or Decimal("0.0000000001")
        ),
        close=str(close),
        volume=str(Decimal(draw.randint(0, 10**17)).scaleb(-10)),
        **fields,
    )


def send(client: APIClient, candles: list[dict[str, Any]]) -> dict[str, int]:
    response = client.post(URL, candles, format="json")
    assert response.status_code == 200, response.content
    answer: dict[str, int] = response.json()
    return answer


def read(client: APIClient, timeframe: str, **query: Any) -> list[dict[str, Any]]:
    """Every candle of BTC/USDT@binance of ``timeframe``, page after page."""
    found: list[dict[str, Any]] = []
    url: str | None = URL
    params: dict[str, Any] | None = {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": timeframe,
        **query,
    }
    while url is not None:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        found.extend(body["results"])
        url, params = body["next"], None
    return found


def recomputed(timeframe: str, symbol: str = "BTC/USDT") -> dict[datetime, Bucket]:
    """Each bucket of ``timeframe`` from the stored 1m candles, in Python."""
    stride = STRIDES[timeframe]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets: dict[datetime, list[MarketData]] = {}
    for row in MarketData.objects.filter(symbol=symbol, exchange="binance", timeframe="1m"):
        start = row.ts - (row.ts - epoch) % stride
        buckets.setdefault(start, []).append(row)
    found: dict[datetime, Bucket] = {}
    for start, rows in buckets.items():
        rows.sort(key=lambda r: r.ts)
        found[start] = (
            rows[0].open,
            max(r.high for r in rows),
            min(r.low for r in rows),
            rows[-1].close,
            sum((r.volume for r in rows), Decimal(0)),
            len(rows),
        )
    return found


def stored(timeframe: str, symbol: str = "BTC/USDT") -> dict[datetime, Bucket]:
    return {
        c.ts: (c.open, c.high, c.low, c.close, c.volume, c.minutes)
        for c in DerivedCandle.objects.filter(
            symbol=symbol, exchange="binance", timeframe=timeframe
        )
    }


def served(candles: list[dict[str, Any]]) -> dict[datetime, tuple[Decimal, ...]]:
    return {
        datetime.fromisoformat(c["ts"]): tuple(
            Decimal(c[k]) for k in ("open", "high", "low", "close", "volume")
        )
        for c in candles
    }


def assert_derived_equal_recomputed(symbol: str = "BTC/USDT") -> None:
    for timeframe in STRIDES:
        assert stored(timeframe, symbol) == recomputed(timeframe, symbol), timeframe


# --- Values -----------------------------------------------------------------------------------


def test_a_bucket_is_its_minutes_first_open_last_close_extremes_and_volume_sum(
    bot_client: APIClient,
) -> None:
    # Minutes 3, 4 and 6 of the day: 5m buckets 00:00 (3, 4) and 00:05 (6); one hour, one day.
    send(
        bot_client,
        [
            minute(6, open="10", high="12", low="9", close="11", volume="0.0000000001"),
            minute(3, open="7", high="8", low="6.5", close="7.5", volume="1.5"),
            minute(4, open="7.5", high="9.25", low="7", close="9", volume="2"),
        ],
    )

    candles = read(bot_client, "5m")

    assert candles == [
        {
            "symbol": "BTC/USDT",
            "exchange": "binance",
            "timeframe": "5m",
            "ts": "2026-01-05T00:00:00Z",
            "open": "7.0000000000",
            "high": "9.2500000000",
            "low": "6.5000000000",
            "close": "9.0000000000",
            "volume": "3.5000000000",
            "indicators": {},
        },
        {
            "symbol": "BTC/USDT",
            "exchange": "binance",
            "timeframe": "5m",
            "ts": "2026-01-05T00:05:00Z",
            "open": "10.0000000000",
            "high": "12.0000000000",
            "low": "9.0000000000",
            "close": "11.0000000000",
            "volume": "0.0000000001",
            "indicators": {},
        },
    ]
    for timeframe in ("15m", "1h", "4h", "1d"):
        (whole,) = read(bot_client, timeframe)
        assert (whole["ts"], whole["open"], whole["high"], whole["low"]) == (
            "2026-01-05T00:00:00Z",
            "7.0000000000",
            "12.0000000000",
            "6.5000000000",
        )
        assert (whole["close"], whole["volume"]) == ("11.0000000000", "3.5000000001")
    assert DerivedCandle.objects.get(timeframe="1d").minutes == 3
    assert not DerivedCandleBacklog.objects.exists()


def test_buckets_are_utc_and_4h_and_1d_start_at_midnight(bot_client: APIClient) -> None:
    # 03:59, 04:00, 23:59 and the next day's 00:00.
    send(bot_client, [minute(n) for n in (239, 240, 1439, 1440)])

    assert [c["ts"] for c in read(bot_client, "4h")] == [
        "2026-01-05T00:00:00Z",
        "2026-01-05T04:00:00Z",
        "2026-01-05T20:00:00Z",
        "2026-01-06T00:00:00Z",
    ]
    assert [c["ts"] for c in read(bot_client, "1d")] == [
        "2026-01-05T00:00:00Z",
        "2026-01-06T00:00:00Z",
    ]
    assert_derived_equal_recomputed()


def test_random_minutes_with_gaps_equal_the_recomputation(bot_client: APIClient) -> None:
    draw = random.Random(15)  # test data, not security
    minutes = sorted(draw.sample(range(3 * 1440), 2000))  # three days, a third missing
    batch = [random_minute(n, draw) for n in minutes]
    draw.shuffle(batch)
    for start in range(0, len(batch), 700):
        send(bot_client, batch[start : start + 700])

    for timeframe in STRIDES:
        expected = recomputed(timeframe)
        assert served(read(bot_client, timeframe, limit=97)) == {
            ts: bucket[:5] for ts, bucket in expected.items()
        }
    assert_derived_equal_recomputed()


# --- Late, repeated and missing minutes ------------------------------------------------------


def test_a_late_minute_changes_only_its_buckets(bot_client: APIClient) -> None:
    send(bot_client, [minute(n) for n in range(0, 3 * 1440, 7)])
    before = read(bot_client, "1h")
    assert len(before) == 72

    # Minute 62 (01:02) arrives after its hour was derived, lower than every other low.
    send(bot_client, [minute(62, open="50", high="51", low="1", close="50.5")])
    derives: list[dict[str, Any]] = []

    def watch(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if "INSERT INTO trading.market_candles_derived" in sql:
            derives.append(params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        after = read(bot_client, "1h")

    changed = [(b["ts"], a["low"]) for b, a in zip(before, after, strict=True) if a != b]
    assert changed == [("2026-01-05T01:00:00Z", "1.0000000000")]
    assert_derived_equal_recomputed()
    # Only the late minute's buckets were read and written, at every level.
    late = DAY0 + timedelta(minutes=62)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert [(p["timeframe"], p["lo"], p["hi"]) for p in derives] == [
        (timeframe, [late - (late - epoch) % stride], [late - (late - epoch) % stride + stride])
        for timeframe, stride, _ in LEVELS
    ]


def test_a_minute_sent_again_with_another_close_changes_nothing(bot_client: APIClient) -> None:
    send(bot_client, [minute(n) for n in range(120)])
    before = {tf: read(bot_client, tf) for tf in STRIDES}

    answer = send(bot_client, [minute(59, close="103.75"), minute(60, close="102")])
    after = {tf: read(bot_client, tf) for tf in STRIDES}

    # The first writer of a candle wins (the stored minute stands), so its buckets stand too.
    assert answer == {"inserted": 0, "duplicates": 2}
    assert not DerivedCandleBacklog.objects.exists()  # nothing new: nothing to derive
    assert MarketData.objects.get(ts=DAY0 + timedelta(minutes=59)).close == Decimal("103.25")
    assert after == before
    assert_derived_equal_recomputed()


def test_a_gap_filled_later_moves_the_open_and_the_minutes(bot_client: APIClient) -> None:
    send(bot_client, [minute(n) for n in range(10, 60)])
    (hour,) = read(bot_client, "1h")
    assert (hour["open"], DerivedCandle.objects.get(timeframe="1h").minutes) == (
        "103.5000000000",
        50,
    )

    send(bot_client, [minute(n, open=f"{90 + n}") for n in range(10)])
    (hour,) = read(bot_client, "1h")

    assert (hour["open"], DerivedCandle.objects.get(timeframe="1h").minutes) == (
        "90.0000000000",
        60,
    )
    assert_derived_equal_recomputed()


def test_the_beat_task_catches_every_market_up(bot_client: APIClient) -> None:
    send(
        bot_client,
        [minute(n) for n in range(30)] + [minute(n, symbol="ETH/USDT") for n in range(9)],
    )
    assert DerivedCandleBacklog.objects.count() == 2
    assert not DerivedCandle.objects.exists()

    assert derived_candles_catch_up_all() == 2

    assert not DerivedCandleBacklog.objects.exists()
    assert_derived_equal_recomputed()
    assert_derived_equal_recomputed("ETH/USDT")
    assert derived_candles_catch_up_all() == 0


# --- What bots sent wins ----------------------------------------------------------------------


def test_a_sent_candle_of_the_timeframe_wins_over_the_derived_one(bot_client: APIClient) -> None:
    send(bot_client, [minute(n) for n in range(0, 240, 3)])
    sent_hour = {
        **minute(0, open="1", high="3", low="0.5", close="2", volume="9"),
        "timeframe": "1h",
        "ts": "2026-01-05T02:00:00Z",
        "indicators": {"rsi": 40},
    }
    send(bot_client, [sent_hour])

    hours = read(bot_client, "1h", limit=1)

    derived = stored("1h")
    assert [h["ts"] for h in hours] == [
        "2026-01-05T00:00:00Z",
        "2026-01-05T01:00:00Z",
        "2026-01-05T02:00:00Z",
        "2026-01-05T03:00:00Z",
    ]
    assert hours[2] == {
        **sent_hour,
        "open": "1.0000000000",
        "high": "3.0000000000",
        "low": "0.5000000000",
        "close": "2.0000000000",
        "volume": "9.0000000000",
    }
    for hour in (hours[0], hours[1], hours[3]):
        ts = datetime.fromisoformat(hour["ts"])
        assert hour["indicators"] == {}
        assert served([hour]) == {ts: derived[ts][:5]}
    # Only sent candles of a timeframe: those, in the very text the 1m path writes.
    send(
        bot_client,
        [
            {**sent_hour, "symbol": "SOL/USDT"},
            {
                **sent_hour,
                "symbol": "SOL/USDT",
                "ts": "2026-01-05T03:00:00Z",
                "indicators": {"k": ['a\\"b', 1.50]},
            },
        ],
    )
    assert [h["ts"] for h in read(bot_client, "1h", symbol="SOL/USDT")] == [
        sent_hour["ts"],
        "2026-01-05T03:00:00Z",
    ]
    page = candles_range(symbol="SOL/USDT", exchange="binance", timeframe="1h", limit=1)
    assert page.more
    assert page == market_data_range(symbol="SOL/USDT", exchange="binance", timeframe="1h", limit=1)


# --- Costs ------------------------------------------------------------------------------------


def test_the_ingest_adds_one_statement_and_a_read_one_probe(bot_client: APIClient) -> None:
    send(bot_client, [minute(n) for n in range(5)])
    read(bot_client, "1h")  # caught up
    body = json.dumps([minute(n) for n in range(5, 10)])

    with CaptureQueriesContext(connection) as queries:
        bot_client.post(URL, body, content_type="application/json")
    marks = [q["sql"] for q in queries.captured_queries if "market_candles_backlog" in q["sql"]]
    assert len(marks) == 1 and marks[0].lstrip().startswith("INSERT")

    read(bot_client, "1h")  # caught up again
    with CaptureQueriesContext(connection) as queries:
        read(bot_client, "1h")
    # The token's look-up, the backlog probe, the page.
    assert len(queries.captured_queries) == 3, [q["sql"][:60] for q in queries.captured_queries]


def test_spans_join_runs_of_a_market_less_than_a_day_apart() -> None:
    t = [DAY0 + timedelta(minutes=n) for n in (0, 5, 3000, 2, 3001)]
    rows = [
        ("A", "x", "1m", t[0]),
        ("A", "x", "1m", t[1]),
        ("B", "x", "1m", t[0]),
        ("A", "x", "1m", t[2]),
        ("A", "x", "5m", t[2]),
        ("A", "x", "1m", t[3]),
        ("A", "x", "1m", t[4]),
    ]

    assert minute_spans(rows) == [
        ("A", "x", t[0], t[1]),
        ("A", "x", t[2], t[4]),
        ("B", "x", t[0], t[0]),
    ]


def test_catching_up_a_market_without_backlog_writes_nothing(
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with django_assert_num_queries(1):
        assert derived_candles_catch_up(symbol="BTC/USDT", exchange="binance") == 0


# --- Two sessions at once ---------------------------------------------------------------------


def _http(method: str, url: str, token: str, body: Any = None) -> int:
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return int(response.status)


@pytest.mark.django_db(transaction=True)
def test_two_sessions_sending_overlapping_minutes_leave_the_recomputation(
    live_server: Any,
) -> None:
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}{URL}"
    reader = f"{url}?symbol=BTC/USDT&exchange=binance&timeframe=1h&limit=10000"
    draws = [random.Random(seed) for seed in (1, 2)]  # test data, not security
    # Each round: two batches overlapping on half their minutes, other values in each, some
    # landing in hours derived the round before; and two readers catching up all the while.
    rounds = [((0, 3000), (1500, 4500)), ((2900, 3100), (2950, 3150)), ((100, 4400), (4400, 4460))]
    for first, second in rounds:
        batches = [
            [random_minute(n, draw) for n in range(*span)]
            for draw, span in zip(draws, (first, second), strict=True)
        ]
        start = threading.Barrier(4)

        def post(batch: list[dict[str, Any]], start: threading.Barrier = start) -> int:
            start.wait(timeout=10)
            return _http("POST", url, token, batch)

        def keep_reading(start: threading.Barrier = start) -> int:
            start.wait(timeout=10)
            return sum(_http("GET", reader, token) for _ in range(8))

        with ThreadPoolExecutor(max_workers=4) as pool:
            posts = [pool.submit(post, batch) for batch in batches]
            reads = [pool.submit(keep_reading) for _ in range(2)]
            assert [p.result() for p in posts] == [200, 200]
            assert [r.result() for r in reads] == [8 * 200, 8 * 200]

    assert _http("GET", reader, token) == 200
    assert not DerivedCandleBacklog.objects.exists()
    assert MarketData.objects.count() == 4500
    assert_derived_equal_recomputed()


@pytest.mark.django_db(transaction=True)
def test_a_catch_up_waits_for_its_markets_lock_and_then_sees_what_its_holder_committed(
    bot_client: APIClient,
) -> None:
    send(bot_client, [minute(n) for n in range(10)])
    holder, watcher = other_connection(), other_connection()
    holder.autocommit = False
    # Another session holds the market's lock while it writes a late minute and its note.
    holder.execute(
        "SELECT pg_advisory_xact_lock(%s)", [derived_candles_lock_key("BTC/USDT", "binance")]
    )
    late = DAY0 + timedelta(minutes=30)
    holder.execute(
        "INSERT INTO trading.market_data (symbol, exchange, timeframe, ts, open, high, low, "
        "close, volume, indicators) VALUES ('BTC/USDT', 'binance', '1m', %s, 2, 3, 1, 2, 7, '{}')",
        [late],
    )
    holder.execute(
        "INSERT INTO trading.market_candles_backlog (symbol, exchange, first_ts, last_ts) "
        "VALUES ('BTC/USDT', 'binance', %s, %s)",
        [late, late],
    )

    def catch_up() -> int:
        try:
            return derived_candles_catch_up(symbol="BTC/USDT", exchange="binance")
        finally:
            connection.close()

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            taken = pool.submit(catch_up)
            waiting = 0
            for _ in range(100):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                waiting = row[0] if row else 0
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting == 1 and not taken.done()
            holder.commit()
            assert taken.result(timeout=30) == 2  # the batch's note and the holder's
    finally:
        holder.close()
        watcher.close()

    (hour,) = read(bot_client, "1h")
    assert (hour["low"], hour["volume"]) == ("1.0000000000", "52.0000000030")
    assert_derived_equal_recomputed()


def test_the_long_timeframes_keep_the_text_json_build_object_writes(bot_client: APIClient) -> None:
    draw = random.Random(4)  # test data, not security
    send(bot_client, [random_minute(n, draw) for n in range(0, 2 * 1440, 3)])
    read(bot_client, "1d")  # caught up

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT timeframe, count(*), count(*) FILTER (WHERE candle_json = json_build_object(
                'symbol', symbol::text, 'exchange', exchange::text, 'timeframe', timeframe::text,
                'ts', replace(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                              '.000000', '') || 'Z',
                'open', open::text, 'high', high::text, 'low', low::text, 'close', close::text,
                'volume', volume::text, 'indicators', '{}'::jsonb)::text)
            FROM trading.market_candles_derived GROUP BY 1 ORDER BY 1
            """
        )
        kept = cursor.fetchall()

    assert kept == [("15m", 192, 0), ("1d", 2, 2), ("1h", 48, 48), ("4h", 12, 12), ("5m", 576, 0)]
    assert not DerivedCandle.objects.filter(timeframe__in=["5m", "15m"], candle_json__isnull=False)
