"""A page of candles is JSON text written by PostgreSQL (trading/selectors/market.py): whatever
shortcut writes it (concat(), the time from to_json, empty indicators without jsonb's output),
its bytes must be json_build_object's for the same rows, times and indicators of every kind."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import T0, make_candle
from trading.selectors.candles import candles_range
from trading.selectors.market import market_data_range

pytestmark = pytest.mark.django_db

MARKET = "/api/v1/market-data/"

# json_build_object's text of each candle, joined as the page joins them: the reference.
REFERENCE_SQL = """
SELECT coalesce('[' || string_agg(json_build_object(
    'symbol', symbol::text, 'exchange', exchange::text, 'timeframe', timeframe::text,
    'ts', replace(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
          || 'Z',
    'open', open::text, 'high', high::text, 'low', low::text, 'close', close::text,
    'volume', volume::text, 'indicators', indicators)::text, ', ' ORDER BY ts) || ']', '[]')
FROM trading.market_data
WHERE symbol = %s AND exchange = %s AND timeframe = %s AND ts >= %s AND ts < %s
"""

AWKWARD_NAME = 'q"b\\s é 😀 \u2028'
INDICATORS: list[dict[str, Any]] = [
    {},
    {"rsi": "61.5", "ema": [1, 2.5, None], "ok": True},
    {"note": 'line\n\t"quoted" \\ é 😀', "nested": {"a": {"b": []}}},
    {"": {}},
]
# Whole seconds (the to_json path), fractions (to_char's), and the ends of the API's range.
MOMENTS = [
    T0,
    T0 + timedelta(minutes=1),
    T0 + timedelta(minutes=2, seconds=7),
    T0 + timedelta(minutes=3, microseconds=500_000),
    T0 + timedelta(minutes=4, microseconds=1),
    T0 + timedelta(minutes=5, microseconds=123_456),
    T0 + timedelta(minutes=6, seconds=59, microseconds=999_999),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def reference(symbol: str, exchange: str, timeframe: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            REFERENCE_SQL,
            [
                symbol,
                exchange,
                timeframe,
                datetime(1970, 1, 1, tzinfo=UTC),
                datetime(9999, 1, 1, tzinfo=UTC),
            ],
        )
        (text,) = cursor.fetchone()
    return str(text)


@pytest.mark.parametrize(("symbol", "exchange"), [("BTC/USDT", "binance"), (AWKWARD_NAME, "ex\\N")])
def test_a_page_is_json_build_objects_text(symbol: str, exchange: str) -> None:
    for n, ts in enumerate(MOMENTS):
        make_candle(
            symbol=symbol,
            exchange=exchange,
            ts=ts,
            open=Decimal("123456789012345678.0123456789"),
            high=Decimal("123456789012345678.0123456789"),
            low=Decimal("0.0000000001"),
            close=Decimal(n + 1),
            volume=Decimal(0),
            indicators=INDICATORS[n % len(INDICATORS)],
        )
    make_candle(symbol=symbol, exchange=exchange, timeframe="5m", ts=T0)  # not this timeframe

    page = market_data_range(symbol=symbol, exchange=exchange, timeframe="1m", limit=10_000)

    assert page.candles_json == reference(symbol, exchange, "1m")
    assert (page.more, page.last_ts) == (False, MOMENTS[-1])
    # The 1m path of the API's selector writes the same page.
    assert candles_range(
        symbol=symbol, exchange=exchange, timeframe="1m", limit=10_000
    ).candles_json == (page.candles_json)


def test_the_times_and_indicators_read_back_exactly(bot_client: APIClient) -> None:
    for n, ts in enumerate(MOMENTS[:7]):
        make_candle(ts=ts, indicators=INDICATORS[n % len(INDICATORS)])
    response = bot_client.get(
        f"{MARKET}?symbol=BTC/USDT&exchange=binance&timeframe=1m&start=2026-01-01T00:00:00Z"
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["ts"] for row in results] == [
        "2026-01-05T12:00:00Z",
        "2026-01-05T12:01:00Z",
        "2026-01-05T12:02:07Z",
        "2026-01-05T12:03:00.500000Z",
        "2026-01-05T12:04:00.000001Z",
        "2026-01-05T12:05:00.123456Z",
        "2026-01-05T12:06:59.999999Z",
    ]
    assert [row["indicators"] for row in results] == [
        INDICATORS[n % len(INDICATORS)] for n in range(7)
    ]
    assert {(row["open"], row["volume"]) for row in results} == {
        ("100.0000000000", "12.5000000000")
    }


def test_a_short_page_says_whether_candles_follow_before_its_end() -> None:
    nothing = market_data_range(symbol="BTC/USDT", exchange="binance", timeframe="1m", limit=2)
    assert (nothing.candles_json, nothing.more, nothing.last_ts) == ("[]", False, None)
    for minute in range(5):
        make_candle(ts=T0 + timedelta(minutes=minute))
    first = market_data_range(
        symbol="BTC/USDT", exchange="binance", timeframe="1m", start=T0, limit=2
    )
    assert (first.more, first.last_ts) == (True, T0 + timedelta(minutes=1))
    last = market_data_range(
        symbol="BTC/USDT",
        exchange="binance",
        timeframe="1m",
        start=T0 + timedelta(minutes=3),
        end=T0 + timedelta(minutes=5),
        limit=2,
    )
    assert (last.more, last.last_ts) == (False, T0 + timedelta(minutes=4))
    bounded = market_data_range(
        symbol="BTC/USDT",
        exchange="binance",
        timeframe="1m",
        start=T0,
        end=T0 + timedelta(minutes=2),
        limit=2,
    )
    assert (bounded.more, bounded.last_ts) == (False, T0 + timedelta(minutes=1))
