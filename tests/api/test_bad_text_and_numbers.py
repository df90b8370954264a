"""Bad text and bad numbers, on every write route: each is a 400 naming the field, never a
500, and nothing is written.

- a lone UTF-16 surrogate (``"a\\ud800b"``) anywhere in a body, in any text field, in a JSON
  field's keys or values;
- JSON fields nested deeper than 32 levels (the documented limit);
- control, zero-width, bidirectional and other invisible characters in identifiers, so that
  ``"BTC/USDT\\u200b"`` is never a new market;
- numbers written with ``_`` or with digits other than ASCII's (Python's Decimal reads both);
- values the database would refuse (an overflow of the computed pnl_pct).
"""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from rest_framework.test import APIClient

from audit.api.events import SYSTEM_EVENT_SHAPE
from audit.models import SystemEvent
from tests.api.test_limits import trade
from tests.api.test_market_and_state import candle
from tests.api.test_writes import balance, event, fill, order, position, signal
from tests.factories import make_trade
from trading.api.balances import BALANCE_SHAPE
from trading.api.errors import exception_handler
from trading.api.market import CANDLE_SHAPE
from trading.api.orders import ORDER_FILL_SHAPE, ORDER_SHAPE
from trading.api.positions import POSITION_SHAPE
from trading.api.shapes import Shape
from trading.api.signals import SIGNAL_SHAPE
from trading.api.state import HEARTBEAT_SHAPE
from trading.api.trades import TRADE_SHAPE
from trading.models import (
    AccountBalance,
    Bot,
    MarketData,
    Order,
    OrderFill,
    Position,
    Signal,
    Trade,
)

pytestmark = pytest.mark.django_db

# route name: (URL, shape, a valid item, whether the route takes a JSON array)
ROUTES: dict[str, tuple[str, Shape, Callable[[], dict[str, Any]], bool]] = {
    "trades": ("/api/v1/trades/", TRADE_SHAPE, lambda: trade(1), True),
    "orders": ("/api/v1/orders/", ORDER_SHAPE, lambda: order(2), True),
    "fills": ("/api/v1/orders/O-1/fills/", ORDER_FILL_SHAPE, lambda: fill(1), True),
    "positions": ("/api/v1/positions/", POSITION_SHAPE, lambda: position(), True),
    "signals": ("/api/v1/signals/", SIGNAL_SHAPE, lambda: signal(1), True),
    "balances": ("/api/v1/balances/", BALANCE_SHAPE, lambda: balance(1), True),
    "events": ("/api/v1/events/", SYSTEM_EVENT_SHAPE, lambda: event(1), True),
    "market-data": ("/api/v1/market-data/", CANDLE_SHAPE, lambda: candle(0), True),
    "heartbeat": ("/api/v1/heartbeat/", HEARTBEAT_SHAPE, lambda: {"status": "active"}, False),
}


def fields_of(*kinds: str) -> list[tuple[str, str]]:
    return [
        (route, name)
        for route, (_, shape, _, _) in ROUTES.items()
        for name, spec in shape.fields.items()
        if spec.kind in kinds
    ]


def pair_ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{route}.{field}" for route, field in pairs]


TEXT_FIELDS = fields_of("str", "choice")
JSON_FIELDS = fields_of("object", "list")
DECIMAL_FIELDS = fields_of("decimal")
# Names that identify a row or a market: no invisible characters, no edge spaces.
IDENTIFIERS = [
    (route, name)
    for route, name in fields_of("str")
    if name
    in {
        "bot_id",
        "trade_id",
        "client_order_id",
        "exchange_order_id",
        "fill_id",
        "fee_currency",
        "symbol",
        "exchange",
        "signal_type",
        "component",
        "event_type",
    }
]


def test_the_text_fields_are_the_ones_the_audit_found_and_more() -> None:
    """Every free-text field of every write route (a new one must join the tests above)."""
    assert sorted(fields_of("str")) == sorted(
        [
            ("trades", "bot_id"),
            ("trades", "trade_id"),
            ("trades", "symbol"),
            ("trades", "exchange"),
            ("trades", "exit_reason"),
            ("trades", "entry_tag"),
            ("orders", "bot_id"),
            ("orders", "client_order_id"),
            ("orders", "exchange_order_id"),
            ("orders", "trade_id"),
            ("orders", "symbol"),
            ("orders", "last_error"),
            ("fills", "bot_id"),
            ("fills", "fill_id"),
            ("fills", "fee_currency"),
            ("positions", "bot_id"),
            ("positions", "symbol"),
            ("positions", "exchange"),
            ("signals", "bot_id"),
            ("signals", "symbol"),
            ("signals", "signal_type"),
            ("signals", "trade_id"),
            ("balances", "bot_id"),
            ("events", "bot_id"),
            ("events", "component"),
            ("events", "event_type"),
            ("events", "message"),
            ("market-data", "symbol"),
            ("market-data", "exchange"),
            ("heartbeat", "bot_id"),
        ]
    )
    assert len(JSON_FIELDS) == 9
    assert len(IDENTIFIERS) == 26


@pytest.fixture
def stored_order(bot_client: APIClient) -> None:
    """O-1, the order the fills route writes to."""
    assert bot_client.post("/api/v1/orders/", order(1), format="json").status_code == 200


def state(bot: Bot) -> dict[str, Any]:
    """Everything a write could change."""
    bot.refresh_from_db()
    models: list[Any] = [
        Trade,
        Order,
        OrderFill,
        Position,
        Signal,
        AccountBalance,
        SystemEvent,
        MarketData,
    ]
    return {
        **{model.__name__: model.objects.count() for model in models},
        "heartbeat": bot.last_heartbeat_at,
        "status": bot.status,
    }


def send(client: APIClient, route: str, bad: dict[str, Any]) -> Any:
    """The route's valid item with ``bad``'s fields, in a batch where the route takes one;
    sent as JSON text with every non-ASCII character escaped (a surrogate as \\ud800)."""
    url, _, valid, takes_batch = ROUTES[route]
    item = valid() | bad
    body = [item] if takes_batch else item
    return client.post(url, json.dumps(body, ensure_ascii=True), content_type="application/json")


def refused(response: Any, route: str, field: str) -> dict[str, Any]:
    """The one error of a 400, checked to name ``field`` (and index 0 in a batch)."""
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["field"] == field
    if ROUTES[route][3]:
        assert error["index"] == 0
    else:
        assert "index" not in error
    return error


def refused_each(
    client: APIClient, route: str, field: str, values: list[Any]
) -> list[tuple[int | None, str, str]]:
    """Each of ``values`` in ``field`` of the route's valid item: (index, field, reason) of
    every error. One batch holds them all where the route takes batches (an item with an
    error is never compared with the others' keys); one request each elsewhere."""
    url, _, valid, takes_batch = ROUTES[route]
    bodies: list[Any] = (
        [[valid() | {field: value} for value in values]]
        if takes_batch
        else [valid() | {field: value} for value in values]
    )
    found: list[tuple[int | None, str, str]] = []
    for position_, body in enumerate(bodies):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, response.content
        found.extend(
            (error.get("index", position_), error["field"], error["reason"])
            for error in response.json()["errors"]
        )
    return found


# --- surrogates ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), TEXT_FIELDS, ids=pair_ids(TEXT_FIELDS))
def test_a_lone_surrogate_in_any_text_field_is_a_400_naming_it(
    route: str, field: str, bot: Bot, bot_client: APIClient
) -> None:
    before = state(bot)

    response = send(bot_client, route, {field: "a\ud800b"})

    error = refused(response, route, field)
    assert error["reason"] == "contains a lone UTF-16 surrogate (\\ud800), which is not text"
    assert state(bot) == before


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
@pytest.mark.parametrize("where", ["value", "key", "deep"])
def test_a_lone_surrogate_anywhere_in_a_json_field_is_a_400_naming_it(
    route: str, field: str, where: str, bot: Bot, bot_client: APIClient
) -> None:
    is_list = ROUTES[route][1].fields[field].kind == "list"
    inner: Any = {
        "value": {"note": "x\udfffy"},
        "key": {"x\udfffy": 1},
        "deep": {"a": [1, {"b": ["ok", "x\udfffy"]}]},
    }[where]
    before = state(bot)

    response = send(bot_client, route, {field: [inner] if is_list else inner})

    error = refused(response, route, field)
    assert error["reason"].startswith("contains a lone UTF-16 surrogate (\\udfff)")
    assert state(bot) == before


def test_a_surrogate_pair_is_one_character_and_is_stored(bot_client: APIClient) -> None:
    body = json.dumps(trade(1) | {"exit_reason": "\U0001f680 moon"}, ensure_ascii=True)
    assert "\\ud83d\\ude80" in body

    response = bot_client.post("/api/v1/trades/", body, content_type="application/json")

    assert response.status_code == 200
    assert Trade.objects.get().exit_reason == "\U0001f680 moon"


def test_a_surrogate_in_an_unknown_field_s_name_is_named_escaped(
    bot: Bot, bot_client: APIClient
) -> None:
    response = send(bot_client, "trades", {"x\ud800": "1"})

    error = refused(response, "trades", "x\\ud800")
    assert error["reason"] == "contains a lone UTF-16 surrogate (\\ud800), which is not text"
    assert Trade.objects.count() == 0


# --- nesting -------------------------------------------------------------------------------------


def nested(levels: int, is_list: bool) -> Any:
    """A value ``levels`` deep: the field's own object or array is the first level."""
    value: Any = [] if is_list else {}
    for _ in range(levels - 1):
        value = [value] if is_list else {"a": value}
    return value


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
def test_json_nested_to_the_limit_is_stored_one_level_more_is_a_400_naming_it(
    route: str, field: str, bot: Bot, bot_client: APIClient
) -> None:
    is_list = ROUTES[route][1].fields[field].kind == "list"
    before = state(bot)

    too_deep = send(bot_client, route, {field: nested(33, is_list)})
    far_too_deep = send(bot_client, route, {field: nested(970, is_list)})

    for response in (too_deep, far_too_deep):
        error = refused(response, route, field)
        assert error["reason"] == "nests deeper than 32 levels of objects and arrays"
    assert state(bot) == before
    at_limit = send(bot_client, route, {field: nested(32, is_list)})
    assert at_limit.status_code == 200, at_limit.content


# --- identifiers ----------------------------------------------------------------------------------

INVISIBLE = {
    "zero-width-space": "\u200b",
    "right-to-left-override": "\u202e",
    "left-to-right-isolate": "\u2066",
    "byte-order-mark": "\ufeff",
    "nul": "\x00",
    "tab": "\t",
    "newline": "\n",
    "delete": "\x7f",
    "no-break-space": "\xa0",
}


INVISIBLE_REASON = (
    "may not contain control, zero-width, bidirectional or other invisible characters"
)
EDGE_REASON = "may not begin or end with a space"


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), IDENTIFIERS, ids=pair_ids(IDENTIFIERS))
def test_an_invisible_character_or_an_edge_space_in_an_identifier_is_a_400_naming_it(
    route: str, field: str, bot: Bot, bot_client: APIClient
) -> None:
    value = {"bot_id": bot.bot_id, "symbol": "BTC/USDT", "exchange": "binance"}.get(field, "X-9")
    bad = [value + char for char in INVISIBLE.values()] + [" " + value, value + " "]
    reasons = [
        "may not contain NUL characters" if char == "\x00" else INVISIBLE_REASON
        for char in INVISIBLE.values()
    ] + [EDGE_REASON, EDGE_REASON]
    before = state(bot)

    found = refused_each(bot_client, route, field, bad)

    assert found == [(index, field, reason) for index, reason in enumerate(reasons)]
    assert state(bot) == before


def test_btc_usdt_with_a_zero_width_space_is_not_a_new_market(bot_client: APIClient) -> None:
    url = ROUTES["market-data"][0]
    assert bot_client.post(url, [candle(0)], format="json").status_code == 200

    response = bot_client.post(url, [candle(1, symbol="BTC/USDT\u200b")], format="json")

    assert response.status_code == 400
    assert list(MarketData.objects.values_list("symbol", flat=True)) == ["BTC/USDT"]


def test_free_text_keeps_tabs_newlines_and_any_script(bot_client: APIClient) -> None:
    text = "line 1\n\tline 2 \u202e \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u200b"

    response = bot_client.post(
        "/api/v1/trades/", trade(1) | {"exit_reason": text, "entry_tag": text}, format="json"
    )

    assert response.status_code == 200
    assert Trade.objects.values_list("exit_reason", "entry_tag").get() == (text, text)


# --- numbers --------------------------------------------------------------------------------------

NOT_PLAIN = {"underscore": "1_000", "arabic-indic": "\u0661\u0662\u0663", "nan": "NaN"}
ALSO_NOT_PLAIN = {
    "fullwidth": "\uff11\uff12",
    "devanagari": "\u0967",
    "infinity": "-Infinity",
    "inner-space": "1 000",
    "hex": "0x10",
}


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), DECIMAL_FIELDS, ids=pair_ids(DECIMAL_FIELDS))
def test_a_number_that_is_not_plain_ascii_decimal_is_a_400_naming_it(
    route: str, field: str, bot: Bot, bot_client: APIClient
) -> None:
    before = state(bot)

    found = refused_each(bot_client, route, field, list(NOT_PLAIN.values()))

    assert found == [
        (index, field, f"{text!r} is not a decimal number")
        for index, text in enumerate(NOT_PLAIN.values())
    ]
    assert state(bot) == before


def test_other_digits_and_spellings_are_refused_too(bot_client: APIClient) -> None:
    found = refused_each(bot_client, "trades", "quantity", list(ALSO_NOT_PLAIN.values()))

    assert found == [
        (index, "quantity", f"{text!r} is not a decimal number")
        for index, text in enumerate(ALSO_NOT_PLAIN.values())
    ]
    assert Trade.objects.count() == 0


@pytest.mark.parametrize("text", ["1000", "-1.5", "+2", "1e3", "1.5E-2", ".5", "5.", " 7 "])
def test_plain_decimals_are_still_read(bot_client: APIClient, text: str) -> None:
    response = bot_client.post(
        "/api/v1/trades/", trade(1) | {"pnl_usd": text, "fees_usd": "0"}, format="json"
    )
    assert response.status_code == 200, response.content


# --- what the database would refuse ------------------------------------------------------------


def closed(**fields: Any) -> dict[str, Any]:
    return trade(1) | {
        "status": "closed",
        "exit_time": "2026-01-05T13:00:00Z",
        **fields,
    }


PNL_PCT_OVERFLOW = (
    "makes pnl_pct (pnl_usd / (quantity x entry_price) x 100) overflow the 6 digits before "
    "the point it can hold"
)
PNL_USD_OVERFLOW = (
    "makes pnl_usd ((exit_price - entry_price) x quantity - fees_usd) overflow the 12 digits "
    "before the point it can hold"
)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            closed(entry_price="0.0000000001", exit_price="100", quantity="1"),
            "entry_price",
            PNL_PCT_OVERFLOW,
        ),
        (
            closed(entry_price="1", exit_price="999999999999999999", quantity="99999999"),
            "exit_price",
            PNL_USD_OVERFLOW,
        ),
        (
            closed(entry_price="1", exit_price="2000000000000", quantity="1"),
            "exit_price",
            PNL_USD_OVERFLOW,
        ),
        (
            closed(entry_price="0.0000000001", exit_price="1", quantity="1", pnl_usd="1000"),
            "entry_price",
            PNL_PCT_OVERFLOW,
        ),
    ],
    ids=["pnl_pct", "pnl_usd-beyond-decimal-precision", "pnl_usd", "pnl_pct-from-pnl_usd"],
)
def test_a_computed_figure_beyond_its_column_names_the_field(
    bot_client: APIClient, body: dict[str, Any], field: str, reason: str
) -> None:
    response = bot_client.post("/api/v1/trades/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": field, "reason": reason}]
    assert Trade.objects.count() == 0


def test_pnl_pct_at_its_column_s_limit_is_stored_just_beyond_is_refused(
    bot_client: APIClient,
) -> None:
    at_limit = closed(entry_price="1", exit_price="2", quantity="1", pnl_usd="9999.99999999")
    beyond = closed(entry_price="1", exit_price="2", quantity="1", pnl_usd="10000")

    refused_ = bot_client.post("/api/v1/trades/", beyond, format="json")
    stored = bot_client.post("/api/v1/trades/", at_limit, format="json")

    assert refused_.json()["errors"] == [{"field": "entry_price", "reason": PNL_PCT_OVERFLOW}]
    assert stored.status_code == 200
    assert Trade.objects.values_list("pnl_pct", flat=True).get() == Decimal("999999.999999")


@pytest.mark.parametrize(
    ("fields", "field", "constraint"),
    [
        ({"entry_price": Decimal(0)}, "entry_price", "trades_entry_price_positive"),
        ({"symbol": None}, "symbol", None),
        ({"status": "closed"}, "status", "trades_closed_has_exit_and_pnl"),
    ],
    ids=["check", "not-null", "check-across-fields"],
)
def test_a_refusal_only_the_database_could_make_names_its_field(
    bot: Bot, fields: dict[str, Any], field: str, constraint: str | None
) -> None:
    """What validation let through and PostgreSQL refused: the field from the constraint's
    model declaration or from the column PostgreSQL names."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        make_trade(bot, **fields)

    response = exception_handler(caught.value, {})

    assert response is not None
    assert response.status_code == 409
    [error] = response.data["errors"]
    assert (error["field"], error["constraint"]) == (field, constraint)
    assert Trade.objects.count() == 0


def test_a_value_copy_cannot_read_names_its_column() -> None:
    with pytest.raises(DataError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE t (price numeric(5, 2))")
        # As the candle writer does: psycopg's COPY, its errors wrapped as Django's.
        with connection.wrap_database_errors, cursor.cursor.copy("COPY t FROM STDIN") as copy:
            copy.write("12345678\n")

    response = exception_handler(caught.value, {})

    assert response is not None
    assert response.status_code == 400
    assert response.data["errors"][0]["field"] == "price"
