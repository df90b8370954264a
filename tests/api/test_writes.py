"""POST orders/, orders/{id}/fills/, positions/, signals/, balances/, events/: upserts by their
natural keys, every bad item named, nothing half-written."""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import SystemEvent
from tests.factories import make_trade
from trading.models import AccountBalance, Bot, Order, OrderFill, Position, Signal

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
POSITIONS = "/api/v1/positions/"
SIGNALS = "/api/v1/signals/"
BALANCES = "/api/v1/balances/"
EVENTS = "/api/v1/events/"
T0 = "2026-01-05T12:00:00Z"


def fills_url(client_order_id: str) -> str:
    return f"/api/v1/orders/{client_order_id}/fills/"


def order(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_order_id": f"O-{n}",
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "market",
        "quantity": "3",
    }
    body.update(fields)
    return body


def fill(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fill_id": f"F-{n}",
        "quantity": "1",
        "price": "100",
        "filled_at": "2026-01-05T12:00:01Z",
    }
    body.update(fields)
    return body


def position(symbol: str = "BTC/USDT", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "exchange": "binance",
        "side": "long",
        "quantity": "1",
        "initial_quantity": "1",
        "avg_entry_price": "60000",
        "opened_at": T0,
    }
    body.update(fields)
    return body


def signal(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "signal_type": "rsi_oversold",
        "generated_at": f"2026-01-05T12:00:0{n}Z",
        "direction": "long",
        "strength": "0.75",
    }
    body.update(fields)
    return body


def balance(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ts": f"2026-01-05T12:0{n}:00Z",
        "balance_usd": "10000",
        "equity_usd": "10250.5",
    }
    body.update(fields)
    return body


def event(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ts": f"2026-01-05T12:00:0{n}Z",
        "component": "exchange",
        "event_type": "reconnect",
        "severity": "warning",
        "message": f"websocket dropped ({n})",
    }
    body.update(fields)
    return body


def counts(created: int = 0, updated: int = 0, unchanged: int = 0) -> dict[str, int]:
    return {"created": created, "updated": updated, "unchanged": unchanged}


def errors_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.content
    return response.json()["errors"]


def stored_order(client_order_id: str = "O-1") -> tuple[Decimal, Decimal | None]:
    found = Order.objects.get(client_order_id=client_order_id)
    return found.filled_quantity, found.avg_fill_price


# --- orders -------------------------------------------------------------------------------------


def test_one_order_is_created_with_nothing_filled(bot: Bot, bot_client: APIClient) -> None:
    response = bot_client.post(
        ORDERS, order(1, order_type="limit", price="60000.5", fees_usd=1.25), format="json"
    )
    assert (response.status_code, response.json()) == (200, counts(created=1))
    stored = Order.objects.get()
    assert (stored.bot_id, stored.client_order_id, stored.order_type, stored.status) == (
        "momentum_001",
        "O-1",
        "limit",
        "pending",
    )
    assert (stored.price, stored.fees_usd) == (Decimal("60000.5"), Decimal("1.25"))
    assert (stored.filled_quantity, stored.avg_fill_price) == (Decimal(0), None)


def test_an_order_batch_counts_created_updated_unchanged(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, [order(1), order(2)], format="json")
    response = bot_client.post(
        ORDERS, [order(1), order(2, status="submitted"), order(3)], format="json"
    )
    assert response.json() == counts(created=1, updated=1, unchanged=1)
    assert sorted(Order.objects.values_list("client_order_id", "status")) == [
        ("O-1", "pending"),
        ("O-2", "submitted"),
        ("O-3", "pending"),
    ]


def test_an_order_links_its_trade_by_the_bots_trade_id(
    bot: Bot, other_bot: Bot, bot_client: APIClient
) -> None:
    trade = make_trade(bot, trade_id="T-7")
    make_trade(other_bot, trade_id="T-8")
    response = bot_client.post(ORDERS, [order(1, trade_id="T-7")], format="json")
    assert response.json() == counts(created=1)
    assert Order.objects.get().trade_id == trade.pk

    refused = bot_client.post(
        ORDERS, [order(2), order(3, trade_id="T-8"), order(4, trade_id="nope")], format="json"
    )
    assert errors_of(refused) == [
        {"index": 1, "field": "trade_id", "reason": "momentum_001 has no trade 'T-8'"},
        {"index": 2, "field": "trade_id", "reason": "momentum_001 has no trade 'nope'"},
    ]
    assert list(Order.objects.values_list("client_order_id", flat=True)) == ["O-1"]


def test_a_batch_of_bad_orders_names_each_and_writes_nothing(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, order(9), format="json")
    body = [
        order(1),
        {"client_order_id": "O-2", "symbol": "BTC/USDT", "side": "buy", "order_type": "market"},
        order(3, filled_quantity="1", avg_fill_price="100", id=4),
        order(4, quantity="0", retry_count=-1),
        order(5, side="long", quantity="many", submitted_at="yesterday", colour="red"),
        order(6, order_type="stop_limit"),
        order(7, retry_count="2", metadata=[1]),
        order(1, quantity="2"),
    ]
    assert errors_of(bot_client.post(ORDERS, body, format="json")) == [
        {"index": 1, "field": "quantity", "reason": "is required"},
        {"index": 2, "field": "filled_quantity", "reason": "is set by the server"},
        {"index": 2, "field": "avg_fill_price", "reason": "is set by the server"},
        {"index": 2, "field": "id", "reason": "is set by the server"},
        {"index": 3, "field": "quantity", "reason": "must be greater than 0"},
        {"index": 3, "field": "retry_count", "reason": "must be at least 0"},
        {"index": 4, "field": "colour", "reason": "unknown field"},
        {"index": 4, "field": "side", "reason": "must be one of: buy, sell"},
        {"index": 4, "field": "quantity", "reason": "'many' is not a decimal number"},
        {"index": 4, "field": "submitted_at", "reason": "'yesterday' is not an ISO-8601 date-time"},
        {"index": 5, "field": "price", "reason": "is required for a stop_limit order"},
        {"index": 5, "field": "stop_price", "reason": "is required for a stop_limit order"},
        {"index": 6, "field": "retry_count", "reason": "must be an integer"},
        {"index": 6, "field": "metadata", "reason": "must be a JSON object"},
        {
            "index": 7,
            "field": "client_order_id",
            "reason": "repeats the key of item 0 in this batch",
        },
    ]
    assert list(Order.objects.values_list("client_order_id", flat=True)) == ["O-9"]


def test_text_is_stored_exactly_whatever_its_characters(bot_client: APIClient) -> None:
    awkward = 'a "quoted" \\ {brace}, NULL \u00e9'
    body = [order(1, client_order_id=awkward, last_error=awkward), order(2, last_error="NULL")]
    assert bot_client.post(ORDERS, body, format="json").json() == counts(created=2)
    assert sorted(Order.objects.values_list("client_order_id", "last_error")) == [
        ("O-2", "NULL"),
        (awkward, awkward),
    ]


def test_one_bad_order_is_named_without_an_index(bot_client: APIClient) -> None:
    response = bot_client.post(ORDERS, order(1, quantity="-1"), format="json")
    assert errors_of(response) == [{"field": "quantity", "reason": "must be greater than 0"}]
    assert Order.objects.count() == 0


def test_an_order_cannot_shrink_below_what_its_fills_filled(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, [order(1), order(2)], format="json")
    bot_client.post(fills_url("O-1"), fill(1, quantity="2"), format="json")
    response = bot_client.post(
        ORDERS, [order(2, quantity="1"), order(1, quantity="1.5")], format="json"
    )
    assert errors_of(response) == [
        {"index": 1, "field": "quantity", "reason": "is below the 2 its fills already filled"},
    ]
    assert sorted(Order.objects.values_list("client_order_id", "quantity")) == [
        ("O-1", Decimal(3)),
        ("O-2", Decimal(3)),
    ]


# --- order fills --------------------------------------------------------------------------------


def test_fills_set_filled_quantity_and_the_weighted_average_price(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, order(1, quantity="3.5"), format="json")
    first = bot_client.post(fills_url("O-1"), fill(1, quantity="1", price="100"), format="json")
    assert (first.status_code, first.json()) == (200, counts(created=1))
    assert stored_order() == (Decimal("1"), Decimal("100"))

    batch = [fill(1, quantity="1", price="100"), fill(2, quantity="2", price="100.5")]
    again = bot_client.post(fills_url("O-1"), batch, format="json")
    assert again.json() == counts(created=1, unchanged=1)
    # (1 x 100 + 2 x 100.5) / 3 = 100.3333..., to 10 places
    assert stored_order() == (Decimal("3"), Decimal("100.3333333333"))
    assert sorted(OrderFill.objects.values_list("fill_id", "quantity", "price")) == [
        ("F-1", Decimal("1"), Decimal("100")),
        ("F-2", Decimal("2"), Decimal("100.5")),
    ]


def test_a_changed_fill_is_updated_and_the_order_follows_all_its_fills(
    bot_client: APIClient,
) -> None:
    bot_client.post(ORDERS, order(1, quantity="10"), format="json")
    bot_client.post(
        fills_url("O-1"),
        [fill(1, quantity="0.3", price="61000.12"), fill(2, quantity="0.7", price="60999.9")],
        format="json",
    )
    response = bot_client.post(
        fills_url("O-1"), [fill(2, quantity="1.7", price="60999.9"), fill(3)], format="json"
    )
    assert response.json() == counts(created=1, updated=1)
    quantities = [Decimal("0.3"), Decimal("1.7"), Decimal("1")]
    prices = [Decimal("61000.12"), Decimal("60999.9"), Decimal("100")]
    total = sum(quantities, Decimal(0))
    average = sum((q * p for q, p in zip(quantities, prices, strict=True)), Decimal(0)) / total
    # (0.3 x 61000.12 + 1.7 x 60999.9 + 1 x 100) / 3 = 122099.866 / 3
    assert stored_order() == (Decimal("3"), Decimal("40699.9553333333"))
    assert average.quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN) == Decimal(
        "40699.9553333333"
    )


@pytest.mark.parametrize(
    ("low", "high", "average"),
    [
        ("0.0000000001", "0.0000000004", "0.0000000002"),  # 2.5e-10: half to even, down
        ("0.0000000003", "0.0000000004", "0.0000000004"),  # 3.5e-10: half to even, up
    ],
)
def test_the_average_fill_price_rounds_half_to_even_exactly(
    bot_client: APIClient, low: str, high: str, average: str
) -> None:
    bot_client.post(ORDERS, order(1, quantity="2"), format="json")
    bot_client.post(fills_url("O-1"), [fill(1, price=low), fill(2, price=high)], format="json")
    assert stored_order() == (Decimal("2"), Decimal(average))


def test_an_overfill_is_refused_naming_each_item_and_writes_nothing(
    bot_client: APIClient,
) -> None:
    bot_client.post(ORDERS, order(1, quantity="3"), format="json")
    bot_client.post(fills_url("O-1"), fill(1, quantity="2", price="10"), format="json")
    body = [fill(2, quantity="0.5"), fill(3, quantity="1"), fill(4, quantity="0.1")]
    response = bot_client.post(fills_url("O-1"), body, format="json")
    assert errors_of(response) == [
        {
            "index": 1,
            "field": "quantity",
            "reason": "would take the order's filled_quantity to 3.5, over its quantity 3",
        },
        {
            "index": 2,
            "field": "quantity",
            "reason": "would take the order's filled_quantity to 3.6, over its quantity 3",
        },
    ]
    assert list(OrderFill.objects.values_list("fill_id", flat=True)) == ["F-1"]
    assert stored_order() == (Decimal("2"), Decimal("10"))

    # A fill sent again replaces itself: it is not counted twice.
    resent = bot_client.post(fills_url("O-1"), [fill(1, quantity="3", price="10")], format="json")
    assert resent.json() == counts(updated=1)
    assert stored_order() == (Decimal("3"), Decimal("10"))


def test_fills_of_an_unknown_order_or_of_another_bots_order_are_404(
    bot_client: APIClient, other_bot_client: APIClient
) -> None:
    other_bot_client.post(ORDERS, order(1), format="json")
    for url in (fills_url("O-1"), fills_url("nope")):
        response = bot_client.post(url, fill(1), format="json")
        assert response.status_code == 404
    assert OrderFill.objects.count() == 0
    assert stored_order() == (Decimal(0), None)


def test_bad_fills_are_named_and_nothing_is_written(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, order(1), format="json")
    body = [
        fill(1),
        fill(2, order=1, price="0"),
        {"fill_id": "F-3", "quantity": "1", "price": "1"},
        fill(4, fee_currency=5, filled_at="2026-01-05T12:00:00"),
        fill(1),
    ]
    assert errors_of(bot_client.post(fills_url("O-1"), body, format="json")) == [
        {"index": 1, "field": "order", "reason": "is set by the server"},
        {"index": 1, "field": "price", "reason": "must be greater than 0"},
        {"index": 2, "field": "filled_at", "reason": "is required"},
        {"index": 3, "field": "fee_currency", "reason": "must be a string"},
        {
            "index": 3,
            "field": "filled_at",
            "reason": "must carry a UTC offset (e.g. 'Z' or '+00:00')",
        },
        {"index": 4, "field": "fill_id", "reason": "repeats the key of item 0 in this batch"},
    ]
    assert OrderFill.objects.count() == 0


# --- positions ----------------------------------------------------------------------------------


def test_positions_are_upserted_by_the_open_positions_key(bot: Bot, bot_client: APIClient) -> None:
    first = bot_client.post(POSITIONS, position(), format="json")
    assert (first.status_code, first.json()) == (200, counts(created=1))
    batch = [
        position(),
        position("ETH/USDT", side="short", current_price="3000.5"),
        position("SOL/USDT"),
    ]
    bot_client.post(POSITIONS, batch[1:], format="json")
    batch[1] = position(
        "ETH/USDT", side="short", status="partially_closed", quantity="0.4", realized_pnl_usd="12"
    )
    response = bot_client.post(POSITIONS, batch, format="json")
    assert response.json() == counts(updated=1, unchanged=2)
    assert sorted(Position.objects.values_list("symbol", "side", "status", "quantity")) == [
        ("BTC/USDT", "long", "open", Decimal(1)),
        ("ETH/USDT", "short", "partially_closed", Decimal("0.4")),
        ("SOL/USDT", "long", "open", Decimal(1)),
    ]
    assert Position.objects.get(symbol="ETH/USDT").current_price is None  # each send is whole


def test_a_closing_update_closes_the_open_position_and_a_new_one_can_open(
    bot_client: APIClient,
) -> None:
    bot_client.post(POSITIONS, position(), format="json")
    closing = position(status="closed", quantity="0", closed_at="2026-01-05T15:00:00Z")
    assert bot_client.post(POSITIONS, closing, format="json").json() == counts(updated=1)
    assert bot_client.post(POSITIONS, closing, format="json").json() == counts(unchanged=1)
    closed = Position.objects.get()
    assert (closed.status, closed.closed_at) == ("closed", datetime(2026, 1, 5, 15, tzinfo=UTC))

    reopened = position(opened_at="2026-01-06T09:00:00Z", avg_entry_price="58000")
    assert bot_client.post(POSITIONS, reopened, format="json").json() == counts(created=1)
    assert sorted(Position.objects.values_list("status", "opened_at")) == [
        ("closed", datetime(2026, 1, 5, 12, tzinfo=UTC)),
        ("open", datetime(2026, 1, 6, 9, tzinfo=UTC)),
    ]


def test_a_close_without_closed_at_is_stamped_once(bot_client: APIClient) -> None:
    bot_client.post(POSITIONS, position(), format="json")
    closing = position(status="closed", quantity="0")
    assert bot_client.post(POSITIONS, [closing], format="json").json() == counts(updated=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")  # the writing transaction's time (the test's, here)
        (written_at,) = cursor.fetchone()
    assert Position.objects.get().closed_at == written_at
    assert bot_client.post(POSITIONS, [closing], format="json").json() == counts(unchanged=1)
    assert Position.objects.get().closed_at == written_at


def test_a_position_opened_and_closed_between_reports_is_stored_closed(
    bot_client: APIClient,
) -> None:
    closing = position(status="closed", quantity="0", closed_at="2026-01-05T13:00:00Z")
    assert bot_client.post(POSITIONS, closing, format="json").json() == counts(created=1)
    assert bot_client.post(POSITIONS, closing, format="json").json() == counts(unchanged=1)
    assert list(Position.objects.values_list("status", flat=True)) == ["closed"]


def test_bad_positions_are_named_and_nothing_is_written(bot_client: APIClient) -> None:
    bot_client.post(POSITIONS, position("XRP/USDT"), format="json")
    body = [
        position(),
        position("ETH/USDT", quantity="2"),
        position("SOL/USDT", closed_at="2026-01-05T13:00:00Z"),
        position("ADA/USDT", status="closed", closed_at="2026-01-05T11:00:00Z"),
        position("DOT/USDT", side="up", leverage="0", updated_at=T0),
        position("BNB/USDT", quantity="-1", opened_at=12),
        position(),
    ]
    assert errors_of(bot_client.post(POSITIONS, body, format="json")) == [
        {"index": 1, "field": "quantity", "reason": "must not exceed initial_quantity"},
        {"index": 2, "field": "closed_at", "reason": "must be null unless status is closed"},
        {"index": 3, "field": "closed_at", "reason": "must not be before opened_at"},
        {"index": 4, "field": "updated_at", "reason": "is set by the server"},
        {"index": 4, "field": "side", "reason": "must be one of: long, short"},
        {"index": 4, "field": "leverage", "reason": "must be greater than 0"},
        {"index": 5, "field": "quantity", "reason": "must be at least 0"},
        {"index": 5, "field": "opened_at", "reason": "must be an ISO-8601 date-time string"},
        {"index": 6, "field": "symbol", "reason": "repeats the key of item 0 in this batch"},
    ]
    assert list(Position.objects.values_list("symbol", flat=True)) == ["XRP/USDT"]


# --- signals ------------------------------------------------------------------------------------


def test_signals_are_upserted_by_symbol_type_and_time(bot: Bot, bot_client: APIClient) -> None:
    first = bot_client.post(SIGNALS, signal(1), format="json")
    assert (first.status_code, first.json()) == (200, counts(created=1))
    trade = make_trade(bot, trade_id="T-1")
    outcome = signal(1, executed=True, trade_id="T-1", outcome="win", outcome_pnl_usd="42.5")
    response = bot_client.post(SIGNALS, [outcome, signal(2), signal(1, symbol="ETH/USDT")], "json")
    assert response.json() == counts(created=2, updated=1)
    assert bot_client.post(SIGNALS, [outcome], format="json").json() == counts(unchanged=1)
    assert Signal.objects.count() == 3
    won = Signal.objects.get(
        symbol="BTC/USDT", generated_at=datetime(2026, 1, 5, 12, 0, 1, tzinfo=UTC)
    )
    assert (won.executed, won.trade_id, won.outcome, won.outcome_pnl_usd) == (
        True,
        trade.pk,
        "win",
        Decimal("42.5"),
    )


def test_json_numbers_inside_a_signal_are_stored_exactly(bot_client: APIClient) -> None:
    body = (
        '{"symbol": "BTC/USDT", "signal_type": "ml", "generated_at": "2026-01-05T12:00:00Z",'
        ' "filters_passed": ["volume", 0.12345678901234567890123],'
        ' "metadata": {"score": 1e-30, "model": {"depth": 3}}}'
    )
    response = bot_client.post(SIGNALS, body, content_type="application/json")
    assert response.json() == counts(created=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT filters_passed::text, metadata::text FROM trading.signals")
        assert cursor.fetchone() == (
            '["volume", 0.12345678901234567890123]',
            '{"model": {"depth": 3}, "score": 0.000000000000000000000000000001}',
        )


def test_bad_signals_are_named_and_nothing_is_written(bot_client: APIClient) -> None:
    body = [
        signal(1),
        signal(2, validated="yes", filters_failed={"a": 1}, id=3),
        signal(3, direction="up", outcome="won", price="-5"),
        signal(4, generated_at=None, signal_type=""),
        signal(1, direction="short"),
    ]
    assert errors_of(bot_client.post(SIGNALS, body, format="json")) == [
        {"index": 1, "field": "id", "reason": "is set by the server"},
        {"index": 1, "field": "filters_failed", "reason": "must be a JSON array"},
        {"index": 1, "field": "validated", "reason": "must be true or false"},
        {"index": 2, "field": "direction", "reason": "must be one of: long, short, neutral"},
        {"index": 2, "field": "price", "reason": "must be greater than 0"},
        {
            "index": 2,
            "field": "outcome",
            "reason": "must be one of: pending, win, loss, breakeven, skipped",
        },
        {"index": 3, "field": "signal_type", "reason": "may not be blank"},
        {"index": 3, "field": "generated_at", "reason": "may not be null"},
        {"index": 4, "field": "symbol", "reason": "repeats the key of item 0 in this batch"},
    ]
    unknown_trade = bot_client.post(SIGNALS, signal(1, trade_id="T-404"), format="json")
    assert errors_of(unknown_trade) == [
        {"field": "trade_id", "reason": "momentum_001 has no trade 'T-404'"}
    ]
    assert Signal.objects.count() == 0


# --- balances -----------------------------------------------------------------------------------


def test_balances_are_upserted_by_time_and_snapshot_type(bot_client: APIClient) -> None:
    first = bot_client.post(BALANCES, balance(1), format="json")
    assert (first.status_code, first.json()) == (200, counts(created=1))
    batch = [
        balance(1),
        balance(1, snapshot_type="daily"),
        balance(2, equity_usd="10300", margin_used_usd="150.25"),
    ]
    assert bot_client.post(BALANCES, batch, format="json").json() == counts(created=2, unchanged=1)
    changed = [
        balance(1, unrealized_pnl_usd="-20.5"),
        balance(2, equity_usd="10300", margin_used_usd="150.25"),
    ]
    assert bot_client.post(BALANCES, changed, format="json").json() == counts(
        updated=1, unchanged=1
    )
    assert sorted(
        AccountBalance.objects.values_list(
            "ts", "snapshot_type", "equity_usd", "unrealized_pnl_usd"
        )
    ) == [
        (datetime(2026, 1, 5, 12, 1, tzinfo=UTC), "daily", Decimal("10250.5"), Decimal(0)),
        (datetime(2026, 1, 5, 12, 1, tzinfo=UTC), "periodic", Decimal("10250.5"), Decimal("-20.5")),
        (datetime(2026, 1, 5, 12, 2, tzinfo=UTC), "periodic", Decimal("10300"), Decimal(0)),
    ]


def test_bad_balances_are_named_and_nothing_is_written(bot_client: APIClient) -> None:
    body = [
        balance(1),
        balance(2, margin_used_usd="-1", snapshot_type="hourly"),
        {"ts": "2026-01-05T12:03:00Z", "balance_usd": "1", "id": 1},
        balance(4, equity_usd="1e20"),
        balance(1, equity_usd="1"),
    ]
    assert errors_of(bot_client.post(BALANCES, body, format="json")) == [
        {
            "index": 1,
            "field": "snapshot_type",
            "reason": "must be one of: periodic, trade, daily, manual, imported",
        },
        {"index": 1, "field": "margin_used_usd", "reason": "must be at least 0"},
        {"index": 2, "field": "id", "reason": "is set by the server"},
        {"index": 2, "field": "equity_usd", "reason": "is required"},
        {
            "index": 3,
            "field": "equity_usd",
            "reason": "must have at most 12 digits before the point",
        },
        {"index": 4, "field": "ts", "reason": "repeats the key of item 0 in this batch"},
    ]
    assert AccountBalance.objects.count() == 0


# --- system events ------------------------------------------------------------------------------


def test_events_are_appended_for_the_calling_bot_and_exact_repeats_skipped(
    bot_client: APIClient,
) -> None:
    first = bot_client.post(EVENTS, event(1, details={"attempt": 2, "lag_s": 1.5}), format="json")
    assert (first.status_code, first.json()) == (200, counts(created=1))
    batch = [
        event(1, details={"lag_s": 1.5, "attempt": 2}),
        event(1, message="websocket dropped again", details={"lag_s": 1.5, "attempt": 2}),
        event(2, severity="error"),
    ]
    assert bot_client.post(EVENTS, batch, format="json").json() == counts(created=2, unchanged=1)
    assert sorted(SystemEvent.objects.values_list("bot_id", "severity", "message")) == [
        ("momentum_001", "error", "websocket dropped (2)"),
        ("momentum_001", "warning", "websocket dropped (1)"),
        ("momentum_001", "warning", "websocket dropped again"),
    ]


def test_bad_events_are_named_and_nothing_is_written(bot_client: APIClient) -> None:
    body = [
        event(1),
        event(2, severity="fatal", bot="momentum_001"),
        event(3, message="  ", details="none"),
        {"component": "x", "event_type": "y", "message": "z"},
        event(5, component="c" * 101),
        event(1),
    ]
    assert errors_of(bot_client.post(EVENTS, body, format="json")) == [
        {"index": 1, "field": "bot", "reason": "is set by the server"},
        {
            "index": 1,
            "field": "severity",
            "reason": "must be one of: debug, info, warning, error, critical",
        },
        {"index": 2, "field": "message", "reason": "may not be blank"},
        {"index": 2, "field": "details", "reason": "must be a JSON object"},
        {"index": 3, "field": "ts", "reason": "is required"},
        {"index": 4, "field": "component", "reason": "must be at most 100 characters"},
        {"index": 5, "field": "ts", "reason": "repeats the key of item 0 in this batch"},
    ]
    assert SystemEvent.objects.count() == 0


# --- every write endpoint -----------------------------------------------------------------------

WRITES: list[tuple[str, Callable[[], dict[str, Any]], type[Any]]] = [
    (ORDERS, lambda: order(2), Order),
    (fills_url("O-1"), fill, OrderFill),
    (POSITIONS, position, Position),
    (SIGNALS, signal, Signal),
    (BALANCES, balance, AccountBalance),
    (EVENTS, event, SystemEvent),
]


@pytest.fixture
def with_order(bot_client: APIClient) -> None:
    """The order the fills endpoint writes to."""
    assert bot_client.post(ORDERS, order(1), format="json").status_code == 200


@pytest.mark.parametrize(("url", "item", "model"), WRITES)
def test_another_bots_id_is_forbidden_and_only_bots_may_write(
    with_order: None,
    bot_client: APIClient,
    staff_client: APIClient,
    url: str,
    item: Callable[[], dict[str, Any]],
    model: type[Any],
) -> None:
    before = model.objects.count()
    foreign = bot_client.post(url, [item(), {**item(), "bot_id": "shortseller_001"}], "json")
    assert foreign.status_code == 403
    assert APIClient().post(url, item(), format="json").status_code == 401
    assert staff_client.post(url, item(), format="json").status_code == 403
    assert model.objects.count() == before
    own = bot_client.post(url, {**item(), "bot_id": "momentum_001"}, format="json")
    assert (own.status_code, own.json()) == (200, counts(created=1))


@pytest.mark.parametrize(("url", "item", "model"), WRITES)
def test_a_batch_over_5000_or_a_body_not_an_object_is_refused(
    with_order: None,
    bot_client: APIClient,
    url: str,
    item: Callable[[], dict[str, Any]],
    model: type[Any],
) -> None:
    before = model.objects.count()
    too_many = bot_client.post(url, [item()] * 5001, format="json")
    assert errors_of(too_many) == [
        {"field": "body", "reason": "a batch holds at most 5000 items, not 5001"}
    ]
    assert errors_of(bot_client.post(url, "text", format="json")) == [
        {"field": "body", "reason": "must be a JSON object or an array of them"}
    ]
    assert model.objects.count() == before


def test_an_idempotency_key_replays_the_first_answer_to_fills(bot_client: APIClient) -> None:
    bot_client.post(ORDERS, order(1), format="json")
    url = fills_url("O-1")
    first = bot_client.post(url, [fill(1)], format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    again = bot_client.post(url, [fill(1)], format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    other = bot_client.post(url, [fill(2)], format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    assert first.json() == again.json() == counts(created=1)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert list(OrderFill.objects.values_list("fill_id", flat=True)) == ["F-1"]
    assert stored_order() == (Decimal(1), Decimal(100))
