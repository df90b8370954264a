"""POST trades/'s fast path (trading.api.trades_fast): what it takes it stores exactly as the
generic path would; what it does not take, or PostgreSQL refuses, the generic path judges with
its own errors, nothing written by the fast path."""

import json
import random
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

import trading.api.trades as trades_api
from tests.api.conftest import client_with
from tests.factories import make_bot
from trading.api.trades import TRADE_SHAPE, _overflow
from trading.api.trades_fast import MIN_FAST_TRADES, NotFast, trades_copy_text, trades_decoded
from trading.models import Bot, RiskMetricsBacklog, Trade
from trading.services.ingest import trade_derived_fields
from trading.services.ingest.trades import TRADE_COLUMNS, trade_upsert_copied
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/"
# Every column a bot's trade fills (not the server's own ids and times).
COLUMNS = [name for name, _ in TRADE_COLUMNS]
FEW = MIN_FAST_TRADES  # the shortest batch the fast path takes


def trade(n: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trade_id": f"T-{n:05d}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "short" if n % 3 == 0 else "long",
        "quantity": "0.0125",
        "entry_price": f"{60000 + n % 97}.5",
        "entry_time": "2026-01-05T12:00:00.100000+00:00",
        "strategy_data": {"rsi": 61, "atr": "412.5"},
    }
    if n % 2:
        body.update(
            status="closed",
            exit_price=f"{60100 + n % 89}.25",
            exit_time="2026-01-05T12:00:45Z",
            fees_usd="0.75",
            exit_reason="take_profit",
        )
    body.update(fields)
    return body


def batch(size: int) -> list[dict[str, Any]]:
    return [trade(n) for n in range(size)]


@pytest.fixture
def generic_taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One item for each time the generic path was taken (it still runs)."""
    taken: list[int] = []
    original = trades_api.bot_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        taken.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(trades_api, "bot_rows", counted)
    return taken


@pytest.fixture
def twin_client(db: None) -> APIClient:
    """A second bot of the same mode, whose batches the tests send by the generic path."""
    return client_with(bot_token_create(bot=make_bot("twin_001", name="Twin")).key)


def post(client: APIClient, body: Any, **headers: Any) -> Any:
    return client.post(URL, json.dumps(body), content_type="application/json", **headers)


def stored(bot_id: str) -> list[tuple[Any, ...]]:
    return list(Trade.objects.filter(bot_id=bot_id).order_by("trade_id").values_list(*COLUMNS))


def stored_text(bot_id: str) -> list[tuple[str, ...]]:
    """The rows as PostgreSQL writes them (every digit of each numeric's scale, jsonb's text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f'{n}::text' for n in COLUMNS)} FROM trading.trades"  # noqa: S608
            " WHERE bot_id = %s ORDER BY trade_id",
            [bot_id],
        )
        return cursor.fetchall()


def both_ways(
    bot_client: APIClient, twin_client: APIClient, body: list[dict[str, Any]], taken: list[int]
) -> tuple[Any, Any]:
    """``body`` sent by the fast path (as momentum_001) and by the generic one (as twin_001,
    with an Idempotency-Key): both answers."""
    fast = post(bot_client, body)
    assert taken == [], ("the fast path did not take the batch", fast.json())
    generic = post(twin_client, body, HTTP_IDEMPOTENCY_KEY=f"k-{random.random()}")
    assert taken == [1]
    taken.clear()
    return fast, generic


# --- What the fast path stores ------------------------------------------------------------------


def test_a_batch_is_stored_column_by_column_as_the_generic_path_stores_it(
    bot: Bot, bot_client: APIClient, twin_client: APIClient, generic_taken: list[int]
) -> None:
    body = batch(300)
    body[7].update(pnl_usd="-12.5", status="cancelled", exit_price=None)  # a given pnl
    body[8].update(source="backtest", leverage="2.5", entry_tag="a\\b\tc\nd\re")
    body[9]["strategy_data"] = {"deep": {"s": 'x\\ty "q"', "n": [1.50, None, True, -0, 1e5]}}
    body[10].pop("strategy_data")
    body[11].update(trade_id="A\\B\\N", symbol="ETH\\USDT", exchange="ex\\N")
    body[12]["entry_time"] = "9998-12-31T23:59:59.999999Z"  # the last and first times taken
    body[14]["entry_time"] = "1970-01-01T00:00:00Z"
    body[15].update(exit_reason="\\.", entry_tag="\\N")  # COPY's end of data and NULL, as text
    fast, generic = both_ways(bot_client, twin_client, body, generic_taken)
    assert fast.json() == generic.json() == {"created": 300, "updated": 0, "unchanged": 0}
    assert stored(bot.bot_id) == stored("twin_001")
    assert stored_text(bot.bot_id) == stored_text("twin_001")
    row = Trade.objects.get(bot=bot, trade_id="T-00001")
    # (60100 + 1 + 0.25 - 60001.5) x 0.0125 - 0.75 = 0.496875; / (0.0125 x 60001.5) x 100
    assert (row.pnl_usd, row.pnl_pct, row.source) == (
        Decimal("0.49687500"),
        Decimal("0.066248"),
        "paper",
    )
    assert Trade.objects.get(bot=bot, trade_id="A\\B\\N").exchange == "ex\\N"
    assert Trade.objects.get(bot=bot, trade_id="T-00008").entry_tag == "a\\b\tc\nd\re"
    assert Trade.objects.get(bot=bot, trade_id="T-00015").entry_tag == "\\N"


@pytest.mark.parametrize(
    ("fields", "pnl_usd", "pnl_pct"),
    [
        # pnl's 9th place a 5: half-even keeps the even 8th (half away from zero would not)
        ({"exit_price": "100.000000025", "entry_price": "100", "quantity": "1", "fees_usd": "0"},
         "0.00000002", "0.000000"),
        ({"exit_price": "100.000000035", "entry_price": "100", "quantity": "1", "fees_usd": "0"},
         "0.00000004", "0.000000"),
        ({"side": "short", "exit_price": "100.000000025", "entry_price": "100", "quantity": "1",
          "fees_usd": "0"}, "-0.00000002", "0.000000"),
        # pnl_pct's 7th place a 5: 5 / (1 x 200,000,000) x 100 = 0.0000025
        ({"pnl_usd": "5", "entry_price": "200000000", "quantity": "1"}, "5.00000000", "0.000002"),
        ({"pnl_usd": "-7", "entry_price": "200000000", "quantity": "1"}, "-7.00000000",
         "-0.000004"),
        # many digits: Decimal's 28-digit context rounds the product before the quantize
        ({"quantity": "123456.1234567891", "entry_price": "1234.5678901234",
          "exit_price": "1234.5678911299", "fees_usd": "-0.00000001"}, "0.12425860", "0.000000"),
        ({"quantity": "0.0000000001", "entry_price": "999999.9999999999",
          "exit_price": "0.0000000001", "fees_usd": "99999999999.99999999"},
         "-100000000000.00000000", None),
    ],
)  # fmt: skip
def test_figures_round_as_the_generic_path_rounds_them_ties_included(
    bot: Bot,
    bot_client: APIClient,
    twin_client: APIClient,
    generic_taken: list[int],
    fields: dict[str, str],
    pnl_usd: str,
    pnl_pct: str | None,
) -> None:
    body = batch(FEW)
    body[13].update(fields)
    if pnl_pct is None:  # pnl_pct overflows: the generic path names the field
        response = post(bot_client, body)
        assert response.json()["errors"] == [
            {"index": 13, "field": "fees_usd", "reason": "makes pnl_pct (pnl_usd / (quantity x "
             "entry_price) x 100) overflow the 6 digits before the point it can hold"}
        ]  # fmt: skip
        assert (generic_taken, Trade.objects.count()) == ([1], 0)
        return
    fast, generic = both_ways(bot_client, twin_client, body, generic_taken)
    assert fast.json() == generic.json() == {"created": FEW, "updated": 0, "unchanged": 0}
    assert stored_text(bot.bot_id) == stored_text("twin_001")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pnl_usd::text, pnl_pct::text FROM trading.trades WHERE trade_id = 'T-00013'"
        )
        assert cursor.fetchall() == [(pnl_usd, pnl_pct)] * 2


def test_a_batch_sent_again_counts_unchanged_and_updated(
    bot: Bot, bot_client: APIClient, generic_taken: list[int]
) -> None:
    body = batch(FEW)
    body[5]["bot_id"] = bot.bot_id  # its own id, which the generic path takes too
    assert post(bot_client, body).json() == {"created": FEW, "updated": 0, "unchanged": 0}
    body[3]["entry_tag"] = "moved"
    body.append(trade(FEW))
    assert post(bot_client, body).json() == {"created": 1, "updated": 1, "unchanged": FEW - 1}
    assert generic_taken == []
    assert Trade.objects.get(trade_id="T-00003").entry_tag == "moved"


def test_trades_entered_before_yesterday_mark_the_backlog(
    bot: Bot, bot_client: APIClient, generic_taken: list[int]
) -> None:
    today = timezone.now().date()
    body = batch(FEW)
    assert post(bot_client, body).json()["created"] == FEW  # 2026-01-05: long before today
    assert generic_taken == []
    assert RiskMetricsBacklog.objects.get(bot=bot).since.isoformat() == "2026-01-05"
    RiskMetricsBacklog.objects.all().delete()
    fresh = [trade(n, entry_time=f"{today}T00:00:00Z") for n in range(1_000, 1_000 + FEW)]
    for item in fresh[1::2]:
        item["exit_time"] = f"{today}T00:00:01Z"
    assert post(bot_client, fresh).json()["created"] == FEW
    assert not RiskMetricsBacklog.objects.exists()


def test_a_fast_batch_is_the_token_and_three_statements(
    bot_client: APIClient, django_assert_num_queries: Any, generic_taken: list[int]
) -> None:
    post(bot_client, batch(FEW))  # the token's first use notes it; later requests do not
    body = [trade(n) for n in range(100, 1_100)]
    # the token; the staging table, the upsert from it and its drop, in a savepoint (the
    # test's transaction around it): SAVEPOINT and RELEASE. The COPY goes by psycopg's own
    # cursor, which Django does not count.
    with django_assert_num_queries(6) as captured:
        response = post(bot_client, body)
    assert response.json() == {"created": 1_000, "updated": 0, "unchanged": 0}
    assert generic_taken == []
    statements = [q["sql"].split()[0] for q in captured.captured_queries]
    assert statements == ["SELECT", "SAVEPOINT", "CREATE", "WITH", "DROP", "RELEASE"]


# --- What it leaves to the generic path ---------------------------------------------------------

_DEEP: dict[str, Any] = {}
_node = _DEEP
for _ in range(40):
    _node["x"] = {}
    _node = _node["x"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        # refused by PostgreSQL (CHECK constraints, input functions), named by the generic path
        ({"quantity": "0"}, {"field": "quantity", "reason": "must be greater than 0"}),
        ({"exit_time": "2026-01-05T11:00:00Z"},
         {"field": "exit_time", "reason": "must not be before entry_time"}),
        ({"entry_price": "1.2.3"},
         {"field": "entry_price", "reason": "'1.2.3' is not a decimal number"}),
        ({"entry_time": "2026-02-30T00:00:00Z"}, {"field": "entry_time",
          "reason": "'2026-02-30T00:00:00Z' is not an ISO-8601 date-time"}),
        ({"fees_usd": "1234567890123"},
         {"field": "fees_usd", "reason": "must have at most 12 digits before the point"}),
        ({"leverage": "0"}, {"field": "leverage", "reason": "must be greater than 0"}),
        ({"strategy_data": {"n": "@@1e200000@@"}}, {"field": "strategy_data", "reason":
          "holds a number PostgreSQL cannot store: at most 131072 digits before the point and "
          "16383 after"}),
        # not taken by the fast path at all
        ({"trade_id": "T-00001"},
         {"field": "trade_id", "reason": "repeats the key of item 1 in this batch"}),
        ({"trade_id": "T-2222 "},
         {"field": "trade_id", "reason": "may not begin or end with a space"}),
        ({"symbol": "BTC\tUSDT"}, {"field": "symbol", "reason": "may not contain control, "
          "zero-width, bidirectional or other invisible characters"}),
        ({"exit_reason": "x" * 250 + " " * 6},
         {"field": "exit_reason", "reason": "must be at most 255 characters"}),
        ({"status": "open"},
         {"field": "exit_time", "reason": "must be null while the trade is open"}),
        ({"exit_price": None},
         {"field": "exit_price", "reason": "is required when status is closed"}),
        ({"side": "sideways"}, {"field": "side", "reason": "must be one of: long, short"}),
        ({"source": ""}, {"field": "source",
          "reason": "must be one of: live, paper, backtest, imported"}),
        ({"entry_time": "1969-12-31T23:59:59Z"},
         {"field": "entry_time", "reason": "must be between 1970 and 9998"}),
        ({"entry_time": "2026-01-05T24:00:00Z"}, {"field": "entry_time",
          "reason": "'2026-01-05T24:00:00Z' is not an ISO-8601 date-time"}),
        ({"strategy_data": None}, {"field": "strategy_data", "reason": "may not be null"}),
        ({"strategy_data": _DEEP}, {"field": "strategy_data",
          "reason": "nests deeper than 32 levels of objects and arrays"}),
        ({"quantity": "1000000", "entry_price": "1000000"}, {"field": "quantity", "reason":
          "quantity x entry_price = 1000000000000 USD, more than the 999999999999.99999999 USD "
          "a trade's value may be (the USD columns hold 12 digits before the point)"}),
        ({"quantity": "-1"}, {"field": "quantity", "reason": "must be greater than 0"}),
        ({"pnl_usd": "1e3", "quantity": "0"},
         {"field": "quantity", "reason": "must be greater than 0"}),
    ],
)  # fmt: skip
def test_a_bad_trade_late_in_a_batch_is_named_by_the_generic_path_and_nothing_is_written(
    bot_client: APIClient, change: dict[str, Any], error: dict[str, str]
) -> None:
    body = batch(2_500)
    body[2_223].update(change)
    text = json.dumps(body).replace('"@@', "").replace('@@"', "")  # a number written raw
    response = bot_client.post(URL, text, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 2_223, **error}]
    assert Trade.objects.count() == 0


def test_a_bad_trade_that_updates_a_stored_one_is_named_and_nothing_is_written(
    bot_client: APIClient,
) -> None:
    post(bot_client, batch(FEW))
    body = batch(FEW)
    body[0]["entry_tag"] = "changed"
    body[33]["leverage"] = "0"  # the CHECK judges the row before the conflict
    response = post(bot_client, body)
    assert response.json()["errors"] == [
        {"index": 33, "field": "leverage", "reason": "must be greater than 0"}
    ]
    assert not Trade.objects.filter(entry_tag="changed").exists()


def test_another_bots_id_is_refused_as_by_the_generic_path(bot_client: APIClient) -> None:
    body = batch(FEW)
    body[25]["bot_id"] = "someone_else"
    response = post(bot_client, body)
    assert response.status_code == 403
    assert Trade.objects.count() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 0.5},  # a JSON number
        {"entry_price": "60000.12345678901"},  # more places than the column: rounded half-even
        {"fees_usd": "+0.75"},
        {"entry_time": "2026-01-05T13:00:00+01:00"},  # another offset
        {"exit_reason": "caf\\u00e9"},  # an escape (written raw below)
        {"pnl": "1"},  # a field the server owns
    ],
)
def test_other_spellings_take_the_generic_path(
    bot_client: APIClient, generic_taken: list[int], change: dict[str, Any]
) -> None:
    body = batch(FEW)
    body[20].update(change)
    text = json.dumps(body).replace("\\\\u", "\\u")
    response = bot_client.post(URL, text, content_type="application/json")
    assert generic_taken == [1]
    if "pnl" in change:
        assert response.json()["errors"] == [
            {"index": 20, "field": "pnl", "reason": "unknown field"}
        ]
        return
    assert response.json() == {"created": FEW, "updated": 0, "unchanged": 0}


def test_short_batches_and_keys_take_the_generic_path(
    bot_client: APIClient, generic_taken: list[int]
) -> None:
    assert post(bot_client, batch(FEW - 1)).json()["created"] == FEW - 1
    assert post(bot_client, trade(500)).json()["created"] == 1
    keyed = post(bot_client, [trade(n) for n in range(600, 600 + FEW)], HTTP_IDEMPOTENCY_KEY="k")
    assert keyed.json()["created"] == FEW
    assert generic_taken == [1, 1, 1]


# --- Randomized: whatever the fast path takes, the Shape takes with the same values -------------

_NUMBERS = [
    "1", "0.5", "60000.25", "0", "-1", "-0", "1e2", "0.00000000001", "123456789012345678",
    "1234567890123456789", ".5", "5.", ".", "", "1.2.3", " 7", "NaN", "1_0", "١٢", "+1",
    "99999999999.99999999", "0.000000005", "100.000000025", "1000000", "0.0000000001",
]  # fmt: skip
_TIMES = [
    "2026-01-05T12:00:00Z", "2026-01-05T12:00:00.5+00:00", "2026-01-05T13:00:00+01:00",
    "2026-01-05T12:00:00.1234567Z", "2026-01-05T12:00:00", "2026-01-05 12:00:00Z",
    "2026-01-05T24:00:00Z", "2026-02-30T12:00:00Z", "1969-12-31T23:59:59Z", "9999-01-01T00:00:00Z",
    "2026-01-05T12:00:60Z", "2026-01-04T00:00:00Z",
]  # fmt: skip
_TEXTS = ["", "x", " x", "x ", "a\\b", "a\tb", "\u200b", "ok" * 130, "x" * 255 + " "]


def _mutated(rng: random.Random, n: int) -> dict[str, Any]:
    item = trade(n)
    for _change in range(rng.randint(0, 3)):
        name = rng.choice(
            ["quantity", "entry_price", "exit_price", "fees_usd", "pnl_usd", "leverage",
             "entry_time", "exit_time", "status", "side", "source", "trade_id", "symbol",
             "exit_reason", "strategy_data"]
        )  # fmt: skip
        if name in ("entry_time", "exit_time"):
            item[name] = rng.choice([*_TIMES, None])
        elif name in ("status", "side", "source"):
            item[name] = rng.choice(["open", "closed", "cancelled", "long", "short", "paper", None])
        elif name in ("trade_id", "symbol", "exit_reason"):
            item[name] = rng.choice(_TEXTS)
        elif name == "strategy_data":
            item[name] = rng.choice([{}, {"a": [1, {"b": None}]}, [], "x", {"t": "a\tb"}])
        else:
            item[name] = rng.choice([*_NUMBERS, None])
    return item


def test_whatever_the_fast_path_takes_the_shape_takes_with_the_same_values(bot: Bot) -> None:
    # Except what the table's CHECK constraints and PostgreSQL's input functions refuse, which
    # the fast path leaves to them: the test has PostgreSQL refuse those.
    rng = random.Random(20261207)
    today = timezone.now().date().isoformat()
    taken = refused = 0
    for n in range(3_000):
        item = _mutated(rng, n)
        items = trades_decoded(json.dumps([item]).encode(), most=1, least=1)
        if items is None:
            continue
        try:
            text, _ = trades_copy_text(items, bot=bot, today=today, refused=_overflow)
        except NotFast:
            continue
        cleaned, errors = TRADE_SHAPE.clean(item, 0)
        if errors:
            assert _postgresql_refuses(bot, text), (item, errors)
            refused += 1
            continue
        taken += 1
        cleaned["source"] = cleaned["source"] or bot.mode
        trade_derived_fields(cleaned)
        fields = text[:-1].split("\t")
        for (name, kind), field in zip(TRADE_COLUMNS, fields, strict=True):
            expected = cleaned[name]
            if field == "\\N":
                assert expected is None, (name, item)
                continue
            value = _COPY_ESCAPE.sub(lambda m: _COPY_UNESCAPED[m[1]], field)
            if kind == "numeric":
                assert Decimal(value) == expected, (name, item)
            elif kind == "timestamptz":
                assert datetime.fromisoformat(value) == expected, (name, item)
            elif kind == "jsonb":
                assert json.loads(value, parse_float=Decimal) == expected, item
            else:
                assert value == expected, (name, item)
    assert taken > 300 and refused > 50, (taken, refused)


_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_UNESCAPED = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def _postgresql_refuses(bot: Bot, text: str) -> bool:
    try:
        with transaction.atomic():
            trade_upsert_copied(bot=bot, copy_text=text, sent=1, may_make_stale=False)
            transaction.set_rollback(True)
    except (DataError, IntegrityError):
        return True
    return False


def test_random_batches_are_stored_alike_by_both_paths(
    bot: Bot, bot_client: APIClient, twin_client: APIClient, generic_taken: list[int]
) -> None:
    rng = random.Random(7)
    today = timezone.now().date().isoformat()
    for round_ in range(4):
        body: dict[str, dict[str, Any]] = {}
        for n in range(round_ * 10_000, round_ * 10_000 + 1_000):
            item = _mutated(rng, n)
            # what both the Shape and the fast path take, each trade_id once: a batch both
            # paths store
            if item["trade_id"] in body or TRADE_SHAPE.clean(item, 0)[1]:
                continue
            items = trades_decoded(json.dumps([item]).encode(), most=1, least=1)
            try:
                if items is not None:
                    trades_copy_text(items, bot=bot, today=today, refused=_overflow)
                    body[item["trade_id"]] = item
            except NotFast:
                pass
        fast, generic = both_ways(bot_client, twin_client, list(body.values()), generic_taken)
        assert fast.json() == generic.json()
        assert fast.status_code == 200
    assert Trade.objects.filter(bot=bot).count() > 400
    assert stored_text(bot.bot_id) == stored_text("twin_001")
