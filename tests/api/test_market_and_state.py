"""market-data/ (in and out), prices/, heartbeat/ and config/: exact answers, Redis where it
earns its place, and PostgreSQL answering whenever Redis cannot."""

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, connections
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from botconfig.cache import config_cache_key, config_in_force
from botconfig.services import config_version_create
from tests.factories import T0, make_candle
from trading.api.market import _FAST_MISSES, CANDLE_SHAPE, _candle_fast, indicators_json
from trading.models import AccountBalance, Bot, BotStatus, MarketData
from trading.redis_breaker import redis_client, redis_key
from trading.selectors.market import RANGE_SQL, market_latest
from trading.services import live_state, market
from trading.services.market import InsertCounts, market_data_insert_many
from trading.services.partitions import market_data_partitions_create, month_of

pytestmark = pytest.mark.django_db

MARKET = "/api/v1/market-data/"
PRICES = "/api/v1/prices/"
HEARTBEAT = "/api/v1/heartbeat/"
CONFIG = "/api/v1/config/"
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def redis_namespace(settings: SettingsWrapper) -> Iterator[str]:
    """A key prefix of its own for each test, its keys deleted afterwards."""
    prefix = f"atb-test-{uuid.uuid4().hex[:12]}"
    location = django_settings.CACHES["default"]["LOCATION"]
    settings.CACHES = {"default": {**django_settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield prefix
    client = redis.Redis.from_url(location)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def redis_down(settings: SettingsWrapper) -> None:
    """The cache points at a port where no Redis listens: every call to it fails."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": DEAD_REDIS}}


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    """Run ``action`` and then what it queued for after its commit (the price cache)."""

    def run(action: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return action()

    return run


def candle(minute: int = 0, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "ts": (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        "open": "100.5",
        "high": "110",
        "low": "90.25",
        "close": "105",
        "volume": "12.5",
    }
    body.update(fields)
    return body


def stored() -> list[tuple[Any, ...]]:
    return list(
        MarketData.objects.order_by("symbol", "ts").values_list(
            "symbol", "ts", "open", "high", "low", "close", "volume", "indicators"
        )
    )


def price(minute: int, close: str = "105.0000000000", **fields: str) -> dict[str, str]:
    body = {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "ts": (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        "open": "100.5000000000",
        "high": "110.0000000000",
        "low": "90.2500000000",
        "close": close,
        "volume": "12.5000000000",
    }
    body.update(fields)
    return body


# --- POST market-data/ ------------------------------------------------------------------------


def test_candles_are_stored_exactly(bot_client: APIClient) -> None:
    body = [
        candle(0, indicators={"rsi": "61.5", "ema": [1, 2]}),
        candle(1, volume="0", close="90.25"),
        candle(2, symbol="ETH/USDT", open="3000.123456789", high="3000.123456789"),
    ]
    del body[1]["volume"]
    response = bot_client.post(MARKET, body, format="json")
    assert (response.status_code, response.json()) == (200, {"inserted": 3, "duplicates": 0})
    minute = timedelta(minutes=1)
    assert stored() == [
        (
            "BTC/USDT",
            T0,
            Decimal("100.5"),
            Decimal("110"),
            Decimal("90.25"),
            Decimal("105"),
            Decimal("12.5"),
            {"rsi": "61.5", "ema": [1, 2]},
        ),
        ("BTC/USDT", T0 + minute, Decimal("100.5"), Decimal("110"), Decimal("90.25"),
         Decimal("90.25"), Decimal("0"), {}),
        ("ETH/USDT", T0 + 2 * minute, Decimal("3000.123456789"), Decimal("3000.123456789"),
         Decimal("90.25"), Decimal("105"), Decimal("12.5"), {}),
    ]  # fmt: skip


def test_names_and_indicators_holding_copys_special_characters_are_stored_as_sent(
    bot_client: APIClient,
) -> None:
    # The batch is written in COPY's text format: a backslash, tab, newline or carriage return
    # in a value would otherwise end a field or a row, or start an escape. (A name holds no
    # tab or newline: identifiers are printable; the indicators hold them.)
    symbol, exchange = "A\\B\\tC/USDT", "ex\\N"
    indicators = {"note": 'line 1\nline 2\r\t\\N \\\\ "quoted"', "path\\key": "\\"}
    body = [
        candle(0, symbol=symbol, exchange=exchange, indicators=indicators),
        candle(1, symbol=symbol, exchange=exchange),
    ]
    response = bot_client.post(MARKET, body, format="json")
    assert (response.status_code, response.json()) == (200, {"inserted": 2, "duplicates": 0})
    assert list(
        MarketData.objects.order_by("ts").values_list("symbol", "exchange", "indicators")
    ) == [(symbol, exchange, indicators), (symbol, exchange, {})]


def test_numbers_are_read_from_their_text_and_rounded_half_even_to_10_places(
    bot_client: APIClient,
) -> None:
    body = (
        '[{"symbol": "SOL/USDT", "exchange": "binance", "timeframe": "1h",'
        ' "ts": "2026-01-05T13:00:00+01:00", "open": 100.00000000005, "high": 100.00000000015,'
        ' "low": 99.9, "close": 100, "volume": 1E+3, "indicators": {"atr": 0.1234567890123}}]'
    )
    response = bot_client.post(MARKET, body, content_type="application/json")
    assert response.json() == {"inserted": 1, "duplicates": 0}
    row = MarketData.objects.get()
    assert (row.ts, row.open, row.high, row.close, row.volume, row.indicators) == (
        T0,  # 13:00+01:00 is 12:00 UTC
        Decimal("100.0000000000"),
        Decimal("100.0000000002"),
        Decimal("100"),
        Decimal("1000"),
        {"atr": 0.1234567890123},
    )
    with connection.cursor() as cursor:  # the indicator kept every digit it was sent with
        cursor.execute("SELECT indicators->>'atr' FROM trading.market_data")
        assert cursor.fetchone() == ("0.1234567890123",)


def test_repeats_in_the_batch_and_candles_stored_by_another_bot_are_counted_as_duplicates(
    bot_client: APIClient, other_bot_client: APIClient
) -> None:
    first = other_bot_client.post(MARKET, [candle(0, close="101")], format="json")
    assert first.json() == {"inserted": 1, "duplicates": 0}
    body = [
        candle(0, close="107"),  # stored by the other bot: it stays as that bot sent it
        candle(1, close="102"),
        candle(1, close="108", ts="2026-01-05T13:01:00+01:00"),  # the same instant again
        candle(2),
    ]
    response = bot_client.post(MARKET, body, format="json")
    assert response.json() == {"inserted": 2, "duplicates": 2}
    assert [(ts.minute, close) for _, ts, _, _, _, close, *_ in stored()] == [
        (0, Decimal("101")),
        (1, Decimal("102")),
        (2, Decimal("105")),
    ]
    again = bot_client.post(MARKET, body, format="json")
    assert again.json() == {"inserted": 0, "duplicates": 4}


def test_a_stored_candle_in_a_later_chunk_of_a_streamed_batch_is_skipped(
    bot_client: APIClient,
) -> None:
    # given: minute 2,500 stored; the batch's first chunk (1,000 candles) meets none, so the
    # batch is streamed straight into the table until the COPY meets it
    make_candle(ts=T0 + timedelta(minutes=2_500), close=Decimal("101"))
    body = [candle(n) for n in range(3_000)]
    # when
    response = bot_client.post(MARKET, body, format="json")
    # then: the COPY undone, the batch written by the sorted path: all but the stored one
    assert response.json() == {"inserted": 2_999, "duplicates": 1}
    assert MarketData.objects.count() == 3_000
    assert MarketData.objects.get(ts=T0 + timedelta(minutes=2_500)).close == Decimal("101")


def test_a_repeat_in_a_later_chunk_of_a_streamed_batch_is_skipped_the_first_stays(
    bot_client: APIClient,
) -> None:
    body = [candle(n) for n in range(2_500)]
    body.append(candle(7, close="108"))  # in the third chunk: minute 7 again, other values
    response = bot_client.post(MARKET, body, format="json")
    assert response.json() == {"inserted": 2_500, "duplicates": 1}
    assert MarketData.objects.get(ts=T0 + timedelta(minutes=7)).close == Decimal("105")


def test_one_bad_candle_in_a_large_batch_is_named_and_nothing_is_written(
    bot_client: APIClient,
) -> None:
    body = [candle(n) for n in range(2_000)]
    body[1_337]["high"] = "104.5"  # below close (105)
    response = bot_client.post(MARKET, body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": "1 item invalid; nothing was written.",
        "errors": [{"index": 1337, "field": "high", "reason": "must be at least open and close"}],
    }
    assert MarketData.objects.count() == 0


def test_every_bad_candle_gets_its_field_and_reason(bot_client: APIClient) -> None:
    # Two hours on, then back to the hour: at least an hour ahead whatever the minute now.
    future = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    body = [
        candle(0),
        candle(1, low="101"),  # above open
        candle(2, high="100", low="101"),  # high below open and close, low above open
        candle(3, low="0", volume="-1"),
        candle(4, timeframe="2m", price="1"),
        candle(5, timeframe="5m"),  # 12:05 is a 5m open time
        candle(7, timeframe="5m"),  # 12:07 is not
        candle(8, ts="2026-01-05T12:08:30Z"),
        candle(9, ts="2026-01-05T12:09:00"),
        candle(10, ts=future.isoformat()),
        candle(11, open="1234567890123456789", id=4),
        candle(12, indicators=["rsi"]),
        candle(13, indicators=None, symbol="  "),
        {k: v for k, v in candle(14).items() if k != "close"},
        "candle",
        candle(15, indicators={"note": "a\x00b"}),
        candle(16, open="NaN"),
        candle(17, ts="0001-01-01T00:00:00+01:00"),
    ]
    response = bot_client.post(MARKET, body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "16 items invalid; nothing was written."
    assert response.json()["errors"] == [
        {"index": 1, "field": "low", "reason": "must be at most open and close"},
        {"index": 2, "field": "high", "reason": "must be at least open and close"},
        {"index": 2, "field": "low", "reason": "must be at most open and close"},
        {"index": 3, "field": "low", "reason": "must be greater than 0"},
        {"index": 3, "field": "volume", "reason": "must be at least 0"},
        {"index": 4, "field": "price", "reason": "unknown field"},
        {"index": 4, "field": "timeframe", "reason": "must be one of: 1m, 5m, 15m, 1h, 4h, 1d"},
        {
            "index": 6,
            "field": "ts",
            "reason": "must be a 5m candle's open time: a whole multiple of 5 minutes from "
            "00:00 UTC",
        },
        {
            "index": 7,
            "field": "ts",
            "reason": "must be a 1m candle's open time: a whole multiple of 1 minute from "
            "00:00 UTC",
        },
        {"index": 8, "field": "ts", "reason": "must carry a UTC offset (e.g. 'Z' or '+00:00')"},
        {"index": 9, "field": "ts", "reason": "must not be in the future"},
        {"index": 10, "field": "id", "reason": "is set by the server"},
        {"index": 10, "field": "open", "reason": "must have at most 18 digits before the point"},
        {"index": 11, "field": "indicators", "reason": "must be a JSON object"},
        {"index": 12, "field": "symbol", "reason": "may not be blank"},
        {"index": 12, "field": "indicators", "reason": "may not be null"},
        {"index": 13, "field": "close", "reason": "is required"},
        {"index": 14, "field": "body", "reason": "must be a JSON object"},
        {"index": 15, "field": "indicators", "reason": "may not contain NUL characters"},
        {"index": 16, "field": "open", "reason": "'NaN' is not a decimal number"},
        {"index": 17, "field": "ts", "reason": "must be between 1970 and 9998"},
    ]
    assert MarketData.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"symbol": "BTC/USDT"}, "must be a JSON array of candles"),
        ([], "the batch is empty"),
        ([{}] * 4, "a batch holds at most 3 candles, not 4"),
    ],
)
def test_the_body_is_an_array_of_at_most_max_candles(
    bot_client: APIClient, monkeypatch: pytest.MonkeyPatch, body: Any, reason: str
) -> None:
    monkeypatch.setattr("trading.api.market.MAX_CANDLES", 3)
    response = bot_client.post(MARKET, body, format="json")
    assert (response.status_code, response.json()["errors"]) == (
        400,
        [{"field": "body", "reason": reason}],
    )


def test_only_a_bot_writes_candles(staff_client: APIClient, bot_client: APIClient) -> None:
    assert APIClient().post(MARKET, [candle()], format="json").status_code == 401
    assert staff_client.post(MARKET, [candle()], format="json").status_code == 403
    foreign = [candle(0), candle(1, bot_id="shortseller_001")]  # candles have no bot_id
    assert bot_client.post(MARKET, foreign, format="json").status_code == 403
    assert MarketData.objects.count() == 0


def test_an_idempotency_key_replays_the_first_answer(bot_client: APIClient) -> None:
    first = bot_client.post(MARKET, [candle(0)], format="json", HTTP_IDEMPOTENCY_KEY="c1")
    again = bot_client.post(MARKET, [candle(0)], format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert first.json() == again.json() == {"inserted": 1, "duplicates": 0}
    assert again.headers["Idempotent-Replayed"] == "true"


# --- GET market-data/ -------------------------------------------------------------------------


def test_a_range_is_read_in_time_order_in_two_queries(
    bot_client: APIClient, staff_client: APIClient, django_assert_num_queries: Any
) -> None:
    for minute in (3, 0, 2, 1, 4):
        make_candle(ts=T0 + timedelta(minutes=minute), close=Decimal(100 + minute))
    make_candle(symbol="ETH/USDT", ts=T0 + timedelta(minutes=1))
    make_candle(timeframe="5m", ts=T0)
    url = f"{MARKET}?symbol=BTC/USDT&exchange=binance&timeframe=1m&start=2026-01-05T12:01:00Z"
    url += "&end=2026-01-05T13:04:00%2B01:00"  # 12:04 UTC, exclusive
    staff_client.get(PRICES)  # the token's first use notes it; later requests do not
    with django_assert_num_queries(2):  # the token, the range scan
        response = staff_client.get(url)
    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "results": [
            {
                "symbol": "BTC/USDT",
                "exchange": "binance",
                "timeframe": "1m",
                "ts": f"2026-01-05T12:0{minute}:00Z",
                "open": "100.0000000000",
                "high": "110.0000000000",
                "low": "90.0000000000",
                "close": f"{100 + minute}.0000000000",
                "volume": "12.5000000000",
                "indicators": {},
            }
            for minute in (1, 2, 3)
        ],
    }
    assert bot_client.get(url).json() == response.json()


def test_the_range_scan_uses_the_unique_index() -> None:
    """On the month's partition only, with earlier months there too (the probe past the page
    is bounded by the page's start, so the planner prunes them): its index of
    market_data_candle_uniq, in order."""
    market_data_partitions_create(months=[date(2025, 11, 1), date(2025, 12, 1), month_of(T0)])
    params: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "start": T0,
        "end": T0 + timedelta(days=1),
        "limit": 1000,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: see the plan it gets
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {RANGE_SQL}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    # The page, then the probe past its last candle: each on January's partition alone.
    scans = [
        line.split(" on ")[-1].split()[0] for line in plan.splitlines() if "Scan using" in line
    ]
    assert scans == ["market_data_p2026_01", "market_data_p2026_01"]
    assert plan.count("Scan using market_data_candle_uniq_p2026_01 on market_data_p2026_01") == 2
    assert "Sort" not in plan


def test_pages_follow_with_a_cursor(bot_client: APIClient) -> None:
    for minute in range(5):
        make_candle(ts=T0 + timedelta(minutes=minute))
    url = f"{MARKET}?symbol=BTC/USDT&exchange=binance&timeframe=1m&limit=2"
    seen: list[str] = []
    pages = 0
    while url:
        page = bot_client.get(url).json()
        seen += [row["ts"][11:16] for row in page["results"]]
        pages += 1
        url = page["next"]
        if url:
            assert parse_qs(urlsplit(url).query)["limit"] == ["2"]
    assert (pages, seen) == (3, ["12:00", "12:01", "12:02", "12:03", "12:04"])


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        (
            "",
            [
                {"field": "symbol", "reason": "is required"},
                {"field": "exchange", "reason": "is required"},
                {"field": "timeframe", "reason": "is required"},
            ],
        ),
        (
            "symbol=X&exchange=Y&timeframe=2h&start=yesterday&end=2026-01-05T12:00:00",
            [
                {"field": "timeframe", "reason": "must be one of: 1m, 5m, 15m, 1h, 4h, 1d"},
                {"field": "start", "reason": "'yesterday' is not an ISO-8601 date-time"},
                {"field": "end", "reason": "must carry a UTC offset (e.g. 'Z' or '+00:00')"},
            ],
        ),
        (
            "symbol=X&exchange=Y&timeframe=1m&limit=10001&cursor=%21%21",
            [
                {"field": "limit", "reason": "must be a whole number from 1 to 10000"},
                {"field": "cursor", "reason": "is not a cursor this API gave out"},
            ],
        ),
        (
            "symbol=X&exchange=Y&timeframe=1m&start=2026-01-05T12:00:00Z&end=2026-01-05T12:00Z",
            [{"field": "end", "reason": "must be later than start"}],
        ),
        (
            "symbol=%00&exchange=Y&timeframe=1m&start=0001-01-01T00:00:00%2B01:00",
            [
                {"field": "symbol", "reason": "may not contain NUL characters"},
                {"field": "start", "reason": "must be between the years 1 and 9999 in UTC"},
            ],
        ),
    ],
)
def test_bad_parameters_are_named(
    bot_client: APIClient, query: str, errors: list[dict[str, str]]
) -> None:
    response = bot_client.get(f"{MARKET}?{query}")
    assert (response.status_code, response.json()["errors"]) == (400, errors)


def test_reading_candles_needs_a_bot_or_staff(db: None) -> None:
    assert APIClient().get(f"{MARKET}?symbol=X&exchange=Y&timeframe=1m").status_code == 401


# --- GET prices/ ------------------------------------------------------------------------------


def test_prices_come_from_redis_with_no_query_but_the_token_and_the_epoch(
    bot_client: APIClient, on_commit: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    on_commit(lambda: bot_client.post(MARKET, [candle(0), candle(1, close="106")], format="json"))
    # The token; Redis is not seeded yet: the price cache's epoch, then every market's latest
    # candle from PostgreSQL, which seeds it.
    with django_assert_num_queries(3):
        first = bot_client.get(PRICES)
    assert first.json() == {"results": [price(1, close="106.0000000000")]}
    on_commit(lambda: bot_client.post(MARKET, [candle(2, close="107")], format="json"))
    # The token and the epoch (a sequence's last value), which says Redis's hash is current.
    with django_assert_num_queries(2):
        response = bot_client.get(PRICES)
    assert response.json() == {"results": [price(2, close="107.0000000000")]}


def test_a_backfill_never_moves_a_price_back(
    bot_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    on_commit(lambda: bot_client.post(MARKET, [candle(5)], format="json"))
    bot_client.get(PRICES)
    on_commit(
        lambda: bot_client.post(MARKET, [candle(n, close="99") for n in range(5)], format="json")
    )
    assert bot_client.get(PRICES).json() == {"results": [price(5)]}


def test_prices_are_filtered_and_ordered_by_market(
    bot_client: APIClient, staff_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    on_commit(
        lambda: bot_client.post(
            MARKET,
            [
                candle(0, symbol="ETH/USDT"),
                candle(0, timeframe="1h"),
                candle(3),
                candle(1, exchange="bybit"),
            ],
            format="json",
        )
    )
    assert [
        (p["symbol"], p["exchange"], p["timeframe"], p["ts"][11:16])
        for p in staff_client.get(PRICES).json()["results"]
    ] == [
        ("BTC/USDT", "binance", "1h", "12:00"),
        ("BTC/USDT", "binance", "1m", "12:03"),
        ("BTC/USDT", "bybit", "1m", "12:01"),
        ("ETH/USDT", "binance", "1m", "12:00"),
    ]
    only = bot_client.get(f"{PRICES}?symbol=BTC/USDT&exchange=binance&timeframe=1m").json()
    assert only == {"results": [price(3)]}
    assert len(bot_client.get(f"{PRICES}?symbol=BTC/USDT").json()["results"]) == 3
    assert bot_client.get(f"{PRICES}?exchange=kraken").json() == {"results": []}
    bad = bot_client.get(f"{PRICES}?timeframe=7m&symbol=%00")
    assert (bad.status_code, bad.json()["errors"]) == (
        400,
        [
            {"field": "symbol", "reason": "may not contain NUL characters"},
            {"field": "timeframe", "reason": "must be one of: 1m, 5m, 15m, 1h, 4h, 1d"},
        ],
    )


def test_a_market_redis_lacks_is_looked_up_in_postgresql(
    bot_client: APIClient, on_commit: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    on_commit(lambda: bot_client.post(MARKET, [candle(0)], format="json"))
    bot_client.get(PRICES)  # seeds Redis
    make_candle(symbol="DOGE/USDT", ts=T0)  # written behind the API's back
    url = f"{PRICES}?symbol=DOGE/USDT&exchange=binance&timeframe=1m"
    with django_assert_num_queries(3):  # the token, the epoch; the one market, from PostgreSQL
        assert bot_client.get(url).json()["results"][0]["symbol"] == "DOGE/USDT"
    with django_assert_num_queries(2):  # and now from Redis
        assert bot_client.get(url).json()["results"][0]["symbol"] == "DOGE/USDT"


def test_prices_reseed_from_postgresql_when_redis_lost_them(
    bot_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    on_commit(lambda: bot_client.post(MARKET, [candle(0), candle(4)], format="json"))
    bot_client.get(PRICES)
    redis_client().delete(
        redis_key(live_state.PRICES_LATEST),
        redis_key(live_state.PRICES_TS),
        redis_key(live_state.PRICES_SEEDED),
    )
    assert bot_client.get(PRICES).json() == {"results": [price(4)]}
    assert redis_client().exists(redis_key(live_state.PRICES_SEEDED)) == 1


def test_a_price_that_missed_redis_is_never_served_stale_once_redis_is_back(
    bot_client: APIClient, on_commit: Callable[..., Any], settings: SettingsWrapper
) -> None:
    on_commit(lambda: bot_client.post(MARKET, [candle(0)], format="json"))
    assert bot_client.get(PRICES).json() == {"results": [price(0)]}  # seeded
    epoch = live_state.price_cache_epoch()
    reachable = settings.CACHES
    settings.CACHES = {"default": {**reachable["default"], "LOCATION": DEAD_REDIS}}
    written = on_commit(lambda: bot_client.post(MARKET, [candle(1, close="107")], format="json"))
    assert written.json() == {"inserted": 1, "duplicates": 0}
    assert live_state.price_cache_epoch() == epoch + 1
    settings.CACHES = reachable  # Redis is back, still holding the hash seeded before

    assert redis_client().hlen(redis_key(live_state.PRICES_LATEST)) == 1
    assert bot_client.get(PRICES).json() == {"results": [price(1, close="107.0000000000")]}
    mark = redis_client().get(redis_key(live_state.PRICES_SEEDED))
    assert mark == f"epoch:{epoch + 1}".encode()  # reseeded in the new epoch


def test_the_latest_of_every_market_from_postgresql(db: None) -> None:
    make_candle(ts=T0)
    make_candle(ts=T0 + timedelta(minutes=2), close=Decimal("101.5"))
    make_candle(ts=T0 + timedelta(minutes=1))
    make_candle(symbol="ETH/USDT", timeframe="1d", ts=T0.replace(hour=0))
    assert [(p["symbol"], p["timeframe"], p["ts"], p["close"]) for p in market_latest()] == [
        ("BTC/USDT", "1m", "2026-01-05T12:02:00Z", "101.5000000000"),
        ("ETH/USDT", "1d", "2026-01-05T00:00:00Z", "105.0000000000"),
    ]
    assert market_latest(symbol="ETH/USDT", timeframe="1m") == []


# --- Redis down -------------------------------------------------------------------------------


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_candles_land_and_prices_come_from_postgresql(
    bot_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    response = on_commit(lambda: bot_client.post(MARKET, [candle(0), candle(1)], format="json"))
    assert response.json() == {"inserted": 2, "duplicates": 0}
    assert bot_client.get(PRICES).json() == {"results": [price(1)]}
    exact = f"{PRICES}?symbol=BTC/USDT&exchange=binance&timeframe=1m"
    assert bot_client.get(exact).json() == {"results": [price(1)]}


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_every_heartbeat_writes_postgresql(bot: Bot, bot_client: APIClient) -> None:
    for equity in ("10100", "10200"):
        response = bot_client.post(HEARTBEAT, {"equity_usd": equity}, format="json")
        assert response.status_code == 200
        bot.refresh_from_db()
        assert bot.current_equity_usd == Decimal(equity)
        assert bot.last_heartbeat_at is not None
        assert response.json()["last_heartbeat_at"] == live_state.iso_utc(bot.last_heartbeat_at)


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_config_reads_and_writes_still_work(
    bot: Bot, bot_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    config_version_create(
        bot=bot, config={"risk": {"max_leverage": 1}}, user=None, change_reason="t"
    )
    assert bot_client.get(CONFIG).json()["config"] == {"risk": {"max_leverage": 1}}
    on_commit(
        lambda: config_version_create(
            bot=bot, config={"risk": {"max_leverage": 2}}, user=None, change_reason="t"
        )
    )
    assert bot_client.get(CONFIG).json()["config"] == {"risk": {"max_leverage": 2}}


# --- POST heartbeat/ --------------------------------------------------------------------------


class Clock:
    """timezone.now() under the test's control."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    monkeypatch.setattr("trading.services.live_state.timezone.now", clock)
    return clock


def test_heartbeats_write_postgresql_at_most_once_per_10_seconds(
    bot: Bot, bot_client: APIClient, clock: Clock, django_assert_num_queries: Any
) -> None:
    first = bot_client.post(HEARTBEAT, {"equity_usd": "10500.5"}, format="json")
    assert first.json() == {
        "bot_id": "momentum_001",
        "status": "active",
        "last_heartbeat_at": "2026-11-20T09:30:00Z",
        "equity_usd": "10500.50000000",
        "balance_usd": None,
        "notice": None,
    }
    bot.refresh_from_db()
    assert (bot.last_heartbeat_at, bot.current_equity_usd) == (clock.now, Decimal("10500.5"))
    guard = redis_key("bot:momentum_001:heartbeat-guard")
    assert 0 < redis_client().ttl(guard) <= 10

    clock.tick(1)
    with django_assert_num_queries(1):  # the token lookup; nothing written to PostgreSQL
        second = bot_client.post(HEARTBEAT, {"equity_usd": "10600"}, format="json")
    assert (second.json()["last_heartbeat_at"], second.json()["equity_usd"]) == (
        "2026-11-20T09:30:01Z",
        "10600.00000000",
    )
    bot.refresh_from_db()
    assert (bot.last_heartbeat_at, bot.current_equity_usd) == (
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        Decimal("10500.5"),
    )
    assert live_state.bot_live_state(bot=bot).as_json() == {
        "bot_id": "momentum_001",
        "status": "active",
        "last_heartbeat_at": "2026-11-20T09:30:01Z",
        "equity_usd": "10600.00000000",
        "balance_usd": None,
    }

    clock.tick(9)
    redis_client().delete(guard)  # the 10 s window has passed
    third = bot_client.post(HEARTBEAT, {}, format="json")
    assert third.json()["equity_usd"] == "10600.00000000"  # kept from the last heartbeat
    bot.refresh_from_db()  # the live state is written through: the equity last sent included
    assert (bot.last_heartbeat_at, bot.current_equity_usd) == (clock.now, Decimal("10600"))


def test_a_balance_with_equity_is_also_a_periodic_balance_snapshot(
    bot: Bot, bot_client: APIClient, clock: Clock
) -> None:
    body = {"equity_usd": "10450.25", "balance_usd": "10000"}
    response = bot_client.post(HEARTBEAT, body, format="json")
    assert response.json()["balance_usd"] == "10000.00000000"
    assert list(
        AccountBalance.objects.values_list(
            "bot_id", "ts", "balance_usd", "equity_usd", "snapshot_type"
        )
    ) == [("momentum_001", clock.now, Decimal("10000"), Decimal("10450.25"), "periodic")]


def test_a_status_change_is_written_at_once_and_recorded(
    bot: Bot,
    bot_client: APIClient,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changes: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        live_state,
        "bot_status_recorders",
        [lambda changed, old, new: changes.append((changed.bot_id, old, new))],
    )
    bot_client.post(HEARTBEAT, {}, format="json")
    clock.tick(2)  # inside the 10 s window, yet the status goes to PostgreSQL now
    response = bot_client.post(HEARTBEAT, {"status": "error"}, format="json")
    assert response.json()["status"] == "error"
    bot.refresh_from_db()
    assert (bot.status, bot.last_heartbeat_at) == ("error", clock.now)
    assert changes == [("momentum_001", "active", "error")]


def test_a_paused_bot_stays_paused_until_staff_resume_it(
    bot: Bot, bot_client: APIClient, clock: Clock
) -> None:
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.PAUSED)
    response = bot_client.post(HEARTBEAT, {"status": "active"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["notice"]) == (
        "paused",
        "the bot is paused; only staff can resume it",
    )
    bot.refresh_from_db()
    assert (bot.status, bot.last_heartbeat_at) == ("paused", clock.now)  # still stamped


NEEDS_EQUITY = "is required with balance_usd (a balance snapshot holds both)"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"status": "running"}, [("status", "must be one of: active, paused, stopped, error")]),
        ({"balance_usd": "5"}, [("equity_usd", NEEDS_EQUITY)]),
        (
            {"equity_usd": "lots", "last_heartbeat_at": "x"},
            [
                ("last_heartbeat_at", "is set by the server"),
                ("equity_usd", "'lots' is not a decimal number"),
            ],
        ),
        (["active"], [("body", "must be a JSON object")]),
    ],
)
def test_a_bad_heartbeat_is_refused_and_changes_nothing(
    bot: Bot, bot_client: APIClient, body: Any, errors: list[tuple[str | None, str]]
) -> None:
    response = bot_client.post(HEARTBEAT, body, format="json")
    assert response.status_code == 400
    assert [(e["field"], e["reason"]) for e in response.json()["errors"]] == errors
    bot.refresh_from_db()
    assert bot.last_heartbeat_at is None


def test_a_heartbeat_naming_another_bot_is_forbidden(
    bot: Bot, bot_client: APIClient, other_bot: Bot
) -> None:
    own = bot_client.post(HEARTBEAT, {"bot_id": "momentum_001"}, format="json")
    assert own.status_code == 200
    other = bot_client.post(HEARTBEAT, {"bot_id": "shortseller_001"}, format="json")
    assert other.status_code == 403
    other_bot.refresh_from_db()
    assert other_bot.last_heartbeat_at is None


def test_only_a_bot_sends_heartbeats(staff_client: APIClient) -> None:
    assert APIClient().post(HEARTBEAT, {}, format="json").status_code == 401
    assert staff_client.post(HEARTBEAT, {}, format="json").status_code == 403


# --- GET config/ ------------------------------------------------------------------------------


def test_the_configuration_in_force_is_cached_and_a_new_version_served_at_once(
    bot: Bot,
    bot_client: APIClient,
    on_commit: Callable[..., Any],
    django_assert_num_queries: Any,
) -> None:
    assert bot_client.get(CONFIG).status_code == 404  # none yet (and that is cached too)
    first = on_commit(
        lambda: config_version_create(bot=bot, config={"rsi": 30}, user=None, change_reason="t")
    )
    assert bot_client.get(CONFIG).json() == {
        "version": 1,
        "config": {"rsi": 30},
        "effective_from": live_state.iso_utc(first.effective_from),
    }
    with django_assert_num_queries(1):  # the token lookup: the configuration comes from Redis
        assert bot_client.get(CONFIG).json()["version"] == 1
    on_commit(
        lambda: config_version_create(bot=bot, config={"rsi": 25}, user=None, change_reason="t")
    )
    assert bot_client.get(CONFIG).json()["config"] == {"rsi": 25}


def test_a_read_that_raced_a_new_version_cannot_keep_the_old_one(
    bot: Bot, bot_client: APIClient, on_commit: Callable[..., Any]
) -> None:
    config_version_create(bot=bot, config={"v": 1}, user=None, change_reason="t")
    stale = config_in_force(bot=bot)  # read under generation 0 ...
    on_commit(lambda: config_version_create(bot=bot, config={"v": 2}, user=None, change_reason="t"))
    cache.set(config_cache_key(bot.bot_id), {"generation": 0, "value": stale})  # after the drop
    assert bot_client.get(CONFIG).json()["config"] == {"v": 2}


def test_config_is_for_bots(bot: Bot, other_bot_client: APIClient, staff_client: APIClient) -> None:
    config_version_create(bot=bot, config={"v": 1}, user=None, change_reason="t")
    assert other_bot_client.get(CONFIG).status_code == 404  # another bot's is not visible
    assert staff_client.get(CONFIG).status_code == 403
    assert APIClient().get(CONFIG).status_code == 401


# --- The fast path agrees with the Shape --------------------------------------------------------

_VALUES: dict[str, list[Any]] = {
    "symbol": ["BTC/USDT", "", "  ", "x" * 64, "x" * 65, "a\x00b", 5, None],
    "exchange": ["binance", "", "y" * 51, ["binance"]],
    "timeframe": ["1m", "5m", "1d", "2m", "", None, ["1m"]],
    "ts": [
        "2026-01-05T12:00:00Z",
        "2026-01-05T12:05:00+00:00",
        "2026-01-05T13:00:00+01:00",
        "2026-01-05T00:00:00Z",
        "2026-01-05T12:00:00.000001Z",
        "2026-01-05T12:00:30Z",
        "2026-01-05T12:00:00",
        " 2026-01-05T12:00:00Z",
        "1969-12-31T23:59:00Z",
        "2999-01-01T00:00:00Z",
        "yesterday",
        1767614400,
    ],
    "price": [
        "100", "100.5", "99.9999999999", "100.0000000000", "0.0000000001", "0", "-1", "1e2",
        "100.00000000005", "123456789012345678", "1234567890123456789", ".5", "5.", ".", "",
        "1.2.3", " 7", "NaN", "Infinity", "1_0", "١٢", True, None, 100, Decimal("100.25"),
        Decimal("1E+1"), Decimal("-0"), ["1"],
    ],
    "indicators": [{}, {"rsi": Decimal("55.5"), "tag": "é\"x"}, {"k": "\x00"}, [], None, "x"],
}  # fmt: skip


def _generic(item: Any) -> tuple[Any, ...] | None:
    row, errors = CANDLE_SHAPE.clean(item, 0)
    if errors:
        return None
    return (
        row["symbol"],
        row["exchange"],
        row["timeframe"],
        row["ts"],
        *(row[name] for name in ("open", "high", "low", "close", "volume")),
        indicators_json(row["indicators"]),
    )


def test_whatever_the_fast_path_accepts_the_shape_accepts_with_the_same_values() -> None:
    rng = random.Random(20260105)
    latest = datetime.now(UTC) + timedelta(minutes=5)
    accepted = 0
    for _ in range(4000):
        # A well-formed candle with up to three fields changed, removed or added.
        item: dict[str, Any] = candle(rng.randint(0, 600), indicators={"rsi": "1"})
        for _change in range(rng.randint(0, 3)):
            name = rng.choice([*item, "extra"])
            if rng.random() < 0.1:
                item.pop(name, None)
                continue
            pool = _VALUES["price"] if name in ("open", "high", "low", "close", "volume") else None
            item[name] = rng.choice(pool or _VALUES.get(name, [1]))
        try:
            fast = _candle_fast(item, latest, set())
        except _FAST_MISSES:
            fast = None
        if fast is None:
            continue
        accepted += 1
        generic = _generic(item)
        assert generic is not None, item
        assert fast[:4] == generic[:4] and fast[9] == generic[9], item
        assert [Decimal(v) for v in fast[4:9]] == list(generic[4:9]), item
    assert accepted > 100  # the comparison covered real ground


def test_well_formed_candles_never_need_the_generic_shape(
    bot_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("a well-formed candle took the slow path")

    monkeypatch.setattr("trading.api.market.CANDLE_SHAPE.clean", refuse)
    body = (
        "["
        + ",".join(
            f'{{"symbol": "BTC/USDT", "exchange": "binance", "timeframe": "1m",'
            f' "ts": "2026-01-05T12:{n:02d}:00Z", "open": {100 + n}.5, "high": "{110 + n}",'
            f' "low": 90.25, "close": "105", "volume": 12, "indicators": {{"rsi": 55.5}}}}'
            for n in range(50)
        )
        + "]"
    )
    response = bot_client.post(MARKET, body, content_type="application/json")
    assert response.json() == {"inserted": 50, "duplicates": 0}


# --- Racing batches ---------------------------------------------------------------------------


def _row(minute: int) -> tuple[Any, ...]:
    return (
        "BTC/USDT",
        "binance",
        "1m",
        T0 + timedelta(minutes=minute),
        "100",
        "110",
        "90",
        "105",
        "1",
        "{}",
    )


def test_when_the_new_candles_were_stored_meanwhile_they_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_candle(ts=T0)
    # As if another batch stored the first candle between the look-up and the insert.
    blind = market.INSERT_NEW_SQL.split("WHERE NOT EXISTS")[0]
    monkeypatch.setattr(market, "INSERT_NEW_SQL", blind)
    counts = market_data_insert_many(rows=[_row(0), _row(1), _row(1)])
    assert counts == InsertCounts(inserted=1, duplicates=2)
    assert MarketData.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_a_racing_one_and_skips_what_it_stored() -> None:
    market_data_partitions_create(months=[month_of(T0)])  # the racing batch's, committed
    db = connection.settings_dict
    other = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or None,
    )
    other.execute(  # the racing batch: candle 0 stored, not yet committed
        "INSERT INTO trading.market_data (symbol, exchange, timeframe, ts, open, high, low,"
        " close, volume, indicators) VALUES ('BTC/USDT', 'binance', '1m', %s, 1, 1, 1, 1, 0,"
        " '{}')",
        [T0],
    )
    result: dict[str, Any] = {}

    def ours() -> None:
        try:
            result["counts"] = market_data_insert_many(rows=[_row(0), _row(1)])
        except Exception as exc:  # reported below
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=ours)
    thread.start()
    waiting = 0
    for _ in range(200):  # until our insert waits on the other's uncommitted candle
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            (waiting,) = cursor.fetchone() or (0,)
        if waiting:
            break
        time.sleep(0.05)
    other.commit()
    other.close()
    thread.join(timeout=30)
    assert waiting == 1
    assert result == {"counts": InsertCounts(inserted=1, duplicates=1)}
    assert sorted(MarketData.objects.values_list("ts", "close")) == [
        (T0, Decimal("1")),  # the other batch's
        (T0 + timedelta(minutes=1), Decimal("105")),
    ]
