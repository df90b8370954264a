"""POST market-data/'s fast path (trading.api.market_fast): what it takes it stores exactly as
the generic path would; what it does not take, or PostgreSQL refuses, the generic path judges
with its own errors, nothing written by the fast path."""

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from rest_framework.test import APIClient

import trading.api.market as market_api
from tests.api.test_market_and_state import candle
from tests.factories import T0, make_candle
from trading.api.market import CANDLE_SHAPE, indicators_json
from trading.api.market_fast import NotFast, candle_chunks, candles_decoded
from trading.models import MarketData
from trading.services.market import _copy_lines

pytestmark = pytest.mark.django_db

MARKET = "/api/v1/market-data/"


@pytest.fixture
def generic_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generic path fails the test if it is taken."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the batch took the generic path")

    monkeypatch.setattr("trading.api.market.candles_clean", refuse)


@pytest.fixture
def generic_taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One item for each time the generic path was taken (it still runs)."""
    taken: list[int] = []
    original = market_api.candles_clean

    def counted(*args: Any, **kwargs: Any) -> Any:
        taken.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(market_api, "candles_clean", counted)
    return taken


def post(client: APIClient, body: Any) -> Any:
    return client.post(MARKET, json.dumps(body), content_type="application/json")


def stored() -> list[tuple[Any, ...]]:
    return list(
        MarketData.objects.order_by("symbol", "ts").values_list(
            "symbol", "exchange", "ts", "open", "high", "low", "close", "volume", "indicators"
        )
    )


# --- What the fast path stores ----------------------------------------------------------------


def test_many_digit_decimals_are_stored_exactly_by_the_fast_path(
    bot_client: APIClient, generic_refused: None
) -> None:
    body = [
        candle(
            0,
            open="123456789012345678.1234567890",
            high="999999999999999999.9999999999",
            low="0.0000000001",
            close="000123.4500",
            volume="0",
        ),
        candle(1, open="5.", high="5.5", low=".5", close="0.50", volume="7.0000000000"),
        candle(2, ts="2026-01-05T12:02:00+00:00", indicators={"rsi": 61.25, "tags": ["a\tb"]}),
    ]
    response = post(bot_client, body)
    assert (response.status_code, response.json()) == (200, {"inserted": 3, "duplicates": 0})
    assert stored() == [
        ("BTC/USDT", "binance", T0, Decimal("123456789012345678.1234567890"),
         Decimal("999999999999999999.9999999999"), Decimal("1E-10"), Decimal("123.45"),
         Decimal("0"), {}),
        ("BTC/USDT", "binance", T0 + timedelta(minutes=1), Decimal("5"), Decimal("5.5"),
         Decimal("0.5"), Decimal("0.5"), Decimal("7"), {}),
        ("BTC/USDT", "binance", T0 + timedelta(minutes=2), Decimal("100.5"), Decimal("110"),
         Decimal("90.25"), Decimal("105"), Decimal("12.5"), {"rsi": 61.25, "tags": ["a\tb"]}),
    ]  # fmt: skip
    # and read back with every digit, as the numeric's text
    page = bot_client.get(f"{MARKET}?symbol=BTC/USDT&exchange=binance&timeframe=1m").json()
    first = page["results"][0]
    assert (first["open"], first["high"], first["low"]) == (
        "123456789012345678.1234567890",
        "999999999999999999.9999999999",
        "0.0000000001",
    )


def test_a_fast_batch_costs_two_statements_besides_the_token_and_the_copy(
    bot_client: APIClient, django_assert_num_queries: Any, generic_refused: None
) -> None:
    post(bot_client, [candle(0)])  # the token's first use notes it; later requests do not
    body = [candle(n, symbol=f"S{n % 3}/USDT") for n in range(1, 2_500)]
    # the token; the overlap probe of the first chunk; the latest candle of each market for the
    # price cache; the note of its minutes for the derived candles. The COPY goes by psycopg's
    # own cursor, which Django does not count, in a savepoint (undone if it meets a racing
    # batch); the batch's own transaction is a savepoint too in a test (the test's transaction
    # around it): four SAVEPOINT and RELEASE in all.
    with django_assert_num_queries(8):
        response = post(bot_client, body)
    assert response.json() == {"inserted": 2_499, "duplicates": 0}
    assert MarketData.objects.count() == 2_500


def test_repeats_across_chunks_and_spellings_are_counted_and_the_first_stays(
    bot_client: APIClient, generic_refused: None
) -> None:
    body = [candle(n) for n in range(2_100)]
    body.append(candle(1, close="108", ts="2026-01-05T12:01:00+00:00"))  # minute 1, chunk 3
    body.append(candle(2_000, close="109"))  # a repeat of chunk 3's first candle, in chunk 3
    response = post(bot_client, body)
    assert response.json() == {"inserted": 2_100, "duplicates": 2}
    assert MarketData.objects.get(ts=T0 + timedelta(minutes=1)).close == Decimal("105")
    assert MarketData.objects.get(ts=T0 + timedelta(minutes=2_000)).close == Decimal("105")


def test_a_fast_batch_meeting_a_stored_candle_in_a_later_chunk_takes_the_sorted_path(
    bot_client: APIClient, generic_refused: None
) -> None:
    make_candle(ts=T0 + timedelta(minutes=1_500), close=Decimal("101"))
    response = post(bot_client, [candle(n) for n in range(2_000)])
    assert response.json() == {"inserted": 1_999, "duplicates": 1}
    assert MarketData.objects.get(ts=T0 + timedelta(minutes=1_500)).close == Decimal("101")


# --- What it leaves to the generic path -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        # refused by PostgreSQL (CHECK constraints, numeric input), named by the generic path
        ({"high": "104.5"}, {"field": "high", "reason": "must be at least open and close"}),
        ({"low": "0", "volume": "0"}, {"field": "low", "reason": "must be greater than 0"}),
        (
            {"volume": "1234567890123456789"},
            {"field": "volume", "reason": "must have at most 18 digits before the point"},
        ),
        ({"close": "1.2.3"}, {"field": "close", "reason": "'1.2.3' is not a decimal number"}),
        ({"close": "."}, {"field": "close", "reason": "'.' is not a decimal number"}),
        (
            {"ts": "2026-02-30T00:00:00Z"},
            {"field": "ts", "reason": "'2026-02-30T00:00:00Z' is not an ISO-8601 date-time"},
        ),
        # not taken by the fast path at all
        ({"volume": "-1"}, {"field": "volume", "reason": "must be at least 0"}),
        ({"open": " 1e3"}, {"field": "high", "reason": "must be at least open and close"}),
        ({"ts": "2026-01-05T12:00:30Z"}, {"field": "ts", "reason": "must be a 1m candle's open "
          "time: a whole multiple of 1 minute from 00:00 UTC"}),
        ({"timeframe": "5m", "ts": "2026-01-05T12:01:00Z"}, {"field": "ts", "reason": "must be a "
          "5m candle's open time: a whole multiple of 5 minutes from 00:00 UTC"}),
        ({"ts": "1969-12-31T23:59:00Z"},
         {"field": "ts", "reason": "must be between 1970 and 9998"}),
        ({"symbol": "BTC/USDT "},
         {"field": "symbol", "reason": "may not begin or end with a space"}),
        ({"indicators": None}, {"field": "indicators", "reason": "may not be null"}),
    ],
)  # fmt: skip
def test_a_bad_candle_late_in_a_batch_is_named_by_the_generic_path_and_nothing_is_written(
    bot_client: APIClient, change: dict[str, Any], error: dict[str, str]
) -> None:
    body = [candle(n) for n in range(2_500)]
    body[2_222].update(change)
    response = post(bot_client, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 2_222, **error}]
    assert MarketData.objects.count() == 0


def test_a_bad_candle_on_the_sorted_path_is_named_and_nothing_is_written(
    bot_client: APIClient,
) -> None:
    # given: minute 0 stored, so the batch takes the staging table, which has no CHECK
    # constraints: the insert from it into the table is what refuses the candle
    make_candle(ts=T0, close=Decimal("101"))
    body = [candle(n) for n in range(10)]
    body[5]["low"] = "106"  # above open and close
    response = post(bot_client, body)
    assert response.json()["errors"] == [
        {"index": 5, "field": "low", "reason": "must be at most open and close"}
    ]
    assert MarketData.objects.count() == 1


def test_the_future_is_judged_to_the_minute(bot_client: APIClient) -> None:
    now = datetime.now(UTC)
    far = (now + timedelta(minutes=7)).replace(second=0, microsecond=0)
    response = post(bot_client, [candle(0), candle(1, ts=far.isoformat())])
    assert response.json()["errors"] == [
        {"index": 1, "field": "ts", "reason": "must not be in the future"}
    ]
    near = (now + timedelta(minutes=4)).replace(second=0, microsecond=0)
    response = post(bot_client, [candle(0), candle(1, ts=near.isoformat())])
    assert response.json() == {"inserted": 2, "duplicates": 0}


def test_eleven_places_take_the_generic_path_which_rounds_half_even(
    bot_client: APIClient, generic_taken: list[int]
) -> None:
    # PostgreSQL would round 100.00000000005 half away from zero, to 100.0000000001
    response = post(bot_client, [candle(0, open="100.00000000005", high="110")])
    assert response.json() == {"inserted": 1, "duplicates": 0}
    assert generic_taken == [1]
    assert MarketData.objects.get().open == Decimal("100.0000000000")


@pytest.mark.parametrize(
    "body",
    [
        [candle(0, open=100.5)],  # a JSON number
        [candle(0, symbol="BTC/\\u0055SDT")],  # an escape (written raw below)
        [candle(0, ts="2026-01-05T13:00:00+01:00")],  # another offset
        [candle(0, ts="2026-01-05T12:00:00.000Z")],  # another spelling
    ],
)
def test_other_spellings_take_the_generic_path_with_the_same_values(
    bot_client: APIClient, generic_taken: list[int], body: list[dict[str, Any]]
) -> None:
    text = json.dumps(body).replace("\\\\u", "\\u")
    response = bot_client.post(MARKET, text, content_type="application/json")
    assert response.json() == {"inserted": 1, "duplicates": 0}
    assert generic_taken == [1]
    assert stored() == [
        ("BTC/USDT", "binance", T0, Decimal("100.5"), Decimal("110"), Decimal("90.25"),
         Decimal("105"), Decimal("12.5"), {}),
    ]  # fmt: skip


def test_an_idempotency_key_takes_the_generic_path(
    bot_client: APIClient, generic_taken: list[int]
) -> None:
    first = bot_client.post(
        MARKET, json.dumps([candle(0)]), content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )  # fmt: skip
    assert first.json() == {"inserted": 1, "duplicates": 0}
    assert generic_taken == [1]


# --- The COPY text ------------------------------------------------------------------------------


def test_the_fast_copy_text_is_the_reference_one() -> None:
    # The same lines as trading.services.market builds from the rows (escapes included).
    body = [
        candle(n, symbol="A\\B\\tC/USDT", exchange="ex\\N", indicators={"n": "x\r\n\t\\"})
        for n in range(3)
    ] + [candle(n, ts=(T0 + timedelta(minutes=n)).isoformat()) for n in range(3, 6)]
    # markets interleaved, changing at and between the chunks' edges
    body += [candle(6, symbol="ETH/USDT"), candle(7), candle(8, symbol="ETH/USDT")]
    body += [candle(10, timeframe="5m"), candle(10, exchange="kraken"), candle(11)]
    items = candles_decoded(json.dumps(body).encode(), most=20)
    assert items is not None
    chunks = list(candle_chunks(items, now=datetime.now(UTC), chunk=4))
    assert [len(c) for c in chunks] == [4, 4, 4]
    for chunk in chunks:
        assert chunk.repeats == 0
        assert chunk.copy_text == _copy_lines(list(chunk))
        assert list(chunk.markets) == list(dict.fromkeys(row[:3] for row in chunk))


_PRICES = [
    "100", "100.5", "99.9999999999", "0.0000000001", "0", "-1", "1e2", "100.00000000005",
    "123456789012345678", "1234567890123456789", ".5", "5.", ".", "", "1.2.3", " 7", "NaN",
    "Infinity", "1_0", "١٢", "+1", "0x10", "1\t2",
]  # fmt: skip
_TIMES = [
    "2026-01-05T12:00:00Z", "2026-01-05T12:05:00+00:00", "2026-01-05T13:00:00+01:00",
    "2026-01-05T12:00:00.000001Z", "2026-01-05T12:00:30Z", "2026-01-05T12:00:00",
    "2026-01-05 12:00:00Z", "2026-01-05T24:00:00Z", "2026-02-30T12:00:00Z",
    "1969-12-31T23:59:00Z", "2999-01-01T00:00:00Z", "20260105T120000Z", "2026-W02-1T12:00:00Z",
]  # fmt: skip


def test_whatever_the_fast_path_takes_the_shape_takes_with_the_same_values() -> None:
    # Except what the table's CHECK constraints and PostgreSQL's input functions refuse, which
    # the fast path leaves to them: those the test skips when PostgreSQL refuses them too.
    rng = random.Random(20261207)
    now = datetime.now(UTC)
    taken = 0
    for _ in range(3000):
        item = candle(rng.randint(0, 600))
        for _change in range(rng.randint(0, 2)):
            name = rng.choice(["open", "high", "low", "close", "volume", "ts", "timeframe"])
            if name == "ts":
                item[name] = rng.choice(_TIMES)
            elif name == "timeframe":
                item[name] = rng.choice(["1m", "5m", "1h", "1d", "2m"])
            else:
                item[name] = rng.choice(_PRICES)
        items = candles_decoded(json.dumps([item], ensure_ascii=False).encode(), most=1)
        assert items is not None  # strings all: the decoder takes them
        try:
            (chunk,) = candle_chunks(items, now=now)
        except NotFast:
            continue
        fast = chunk[0]
        cleaned, errors = CANDLE_SHAPE.clean(item, 0)
        if errors:
            assert _postgresql_refuses(fast), (item, errors)
            continue
        taken += 1
        assert fast[:4] == (cleaned["symbol"], cleaned["exchange"], cleaned["timeframe"],
                            cleaned["ts"])  # fmt: skip
        assert [Decimal(v) for v in fast[4:9]] == [
            cleaned[n] for n in ("open", "high", "low", "close", "volume")
        ], item
        assert fast[9] == indicators_json(cleaned["indicators"])
    assert taken > 500


def _postgresql_refuses(row: tuple[Any, ...]) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO trading.market_data (symbol, exchange, timeframe, ts, open, high,"
                " low, close, volume, indicators) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s::jsonb)",
                list(row),
            )
            transaction.set_rollback(True)
    except (DataError, IntegrityError):
        return True
    return False


def test_indicator_numbers_are_stored_as_the_generic_path_stores_them(
    bot_client: APIClient, generic_taken: list[int]
) -> None:
    indicators = (
        '{"big": 123456789012345678901234567890, "atr": 0.1234567890123, "e": 1E+5, "z": -0,'
        ' "deep": {"s": "x\\ty", "n": [1.50, null, true]}}'
    )
    fast = json.dumps([candle(0)])[:-2] + f', "indicators": {indicators}}}]'
    generic = fast.replace("12:00:00Z", "12:01:00Z")
    assert bot_client.post(MARKET, fast, content_type="application/json").json()["inserted"] == 1
    assert generic_taken == []
    response = bot_client.post(
        MARKET, generic, content_type="application/json", HTTP_IDEMPOTENCY_KEY="generic"
    )
    assert (response.json()["inserted"], generic_taken) == (1, [1])
    with connection.cursor() as cursor:
        cursor.execute("SELECT indicators::text FROM trading.market_data ORDER BY ts")
        rows = cursor.fetchall()
    assert rows == [
        ('{"e": 100000, "z": 0, "atr": 0.1234567890123, "big": 123456789012345678901234567890,'
         ' "deep": {"n": [1.50, null, true], "s": "x\\ty"}}',),
    ] * 2  # fmt: skip


def test_a_chunk_opening_with_empty_names_is_judged_by_the_generic_path(
    bot_client: APIClient,
) -> None:
    body = [candle(n) for n in range(1_001)]
    body[1_000].update(symbol="", exchange="", timeframe="")  # the second chunk's first candle
    response = post(bot_client, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1_000, "field": "symbol", "reason": "may not be blank"},
        {"index": 1_000, "field": "exchange", "reason": "may not be blank"},
        {"index": 1_000, "field": "timeframe", "reason": "must be one of: 1m, 5m, 15m, 1h, 4h, 1d"},
    ]
    assert MarketData.objects.count() == 0
