"""The lists' rows are JSON text written by PostgreSQL (trading/selectors/rowjson.py): the bytes
must be the very bytes the output serializers and DRF's JSONRenderer give for the same rows."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from audit.api.reads import RiskEventOutputSerializer, SystemEventOutputSerializer
from audit.models import RiskEvent, SystemEvent
from tests.factories import (
    T0,
    make_balance,
    make_bot,
    make_closed_trade,
    make_fill,
    make_order,
    make_position,
    make_signal,
    make_trade,
)
from trading.api import serializers as out
from trading.models import AccountBalance, Bot, Order, Position, Signal, Trade
from trading.selectors.rowjson import compact_json, json_rows_of

pytestmark = pytest.mark.django_db

# Text that JSON escapes (quote, backslash, control characters), text it leaves alone
# (non-ASCII, DEL) and the two line separators DRF's renderer escapes for JavaScript.
AWKWARD = 'q"b\\s\n\t\x01\x1f\x7f é 😀 \u2028 \u2029 </script>'
NESTED = {
    "rsi": 28,
    "ratio": 0.1,
    "tiny": 1e-07,
    "big": 1e16,
    "precise": 0.30000000000000004,
    "whole": 2.0,
    "deep": [{"k": None, "t": True, "s": AWKWARD}],
    "n": -12345678901234567890,
}
ODD_MOMENT = T0 + timedelta(microseconds=160)  # isoformat: ".000160"


def rows_as_drf_writes_them(serializer: Any, rows: QuerySet[Any]) -> bytes:
    return bytes(JSONRenderer().render(serializer(rows, many=True).data))


def listed_rows(client: APIClient, path: str) -> bytes:
    response = client.get(f"/api/v1/{path}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body: bytes = response.content
    start = body.index(b',"results":') + len(b',"results":')
    assert body.endswith(b"}")
    return body[start:-1]


def fill_every_table(bot: Bot) -> None:
    position = make_position(
        bot,
        symbol=AWKWARD[:60],
        opened_at=ODD_MOMENT,
        stop_loss=Decimal("-0.0000000001"),
        metadata=NESTED,
    )
    make_position(bot, symbol="ETH/USDT", opened_at=T0, quantity=Decimal(0), metadata={})
    trade = make_closed_trade(
        bot,
        pnl_usd=Decimal("-488.12345678"),
        pnl_pct=Decimal("-1.5"),
        fees_usd=Decimal("0"),
        position=position,
        exit_reason=AWKWARD,
        entry_time=ODD_MOMENT,
        exit_time=ODD_MOMENT + timedelta(hours=1, microseconds=1),
        strategy_data=NESTED,
    )
    make_trade(bot, entry_time=T0, quantity=Decimal("9999999999.9999999999"), strategy_data=[])
    order = make_order(bot, trade=trade, position=position, last_error=AWKWARD, metadata=NESTED)
    make_fill(order)
    make_order(bot, price=None, metadata={})
    make_signal(
        bot,
        trade=trade,
        filters_passed=["rsi", AWKWARD],
        filters_failed=[],
        validated=True,
        metadata=NESTED,
        generated_at=ODD_MOMENT,
    )
    make_signal(bot, filters_passed=[], filters_failed=[1.5, {"a": [0.1]}])
    make_balance(bot, ts=ODD_MOMENT, unrealized_pnl_usd=Decimal("-0.5"), metadata=NESTED)
    make_balance(bot, ts=T0 + timedelta(days=400))
    RiskEvent.objects.create(ts=ODD_MOMENT, bot=bot, event_type="drawdown_limit", details=NESTED)
    RiskEvent.objects.create(ts=T0, bot=bot, event_type="drawdown_limit", resolution_note=AWKWARD)
    SystemEvent.objects.create(ts=T0, bot=bot, component="ingest", event_type="x", message=AWKWARD)
    SystemEvent.objects.create(ts=T0, bot=None, component="ingest", event_type="y", message="")


LISTS: list[tuple[str, Any, type[Model], tuple[str, ...]]] = [
    ("trades/", out.TradeOutputSerializer, Trade, ("-entry_time", "-id")),
    ("orders/", out.OrderOutputSerializer, Order, ("-created_at", "-id")),
    ("positions/", out.PositionOutputSerializer, Position, ("-opened_at", "-id")),
    ("signals/", out.SignalOutputSerializer, Signal, ("-generated_at", "-id")),
    ("balances/", out.BalanceOutputSerializer, AccountBalance, ("-ts", "-id")),
    ("bots/", out.BotOutputSerializer, Bot, ("-created_at", "-bot_id")),
    ("risk-events/", RiskEventOutputSerializer, RiskEvent, ("-ts", "-id")),
    ("system-events/", SystemEventOutputSerializer, SystemEvent, ("-ts", "-id")),
]


@pytest.mark.parametrize(("path", "serializer", "model", "ordering"), LISTS, ids=lambda x: x)
def test_a_list_writes_the_bytes_drf_writes(
    path: str,
    serializer: Any,
    model: type[Model],
    ordering: tuple[str, ...],
    bot: Bot,
    staff_client: APIClient,
) -> None:
    make_bot("zeta_002", metadata=NESTED, max_leverage=Decimal("3.5"), name=AWKWARD)
    fill_every_table(bot)
    rows = model._default_manager.order_by(*ordering)
    assert rows.count() >= 2

    assert json_rows_of(serializer) is not None  # served by PostgreSQL's text, not DRF
    assert listed_rows(staff_client, path) == rows_as_drf_writes_them(serializer, rows)


def test_the_cursor_links_are_the_ones_drf_pagination_gave(bot: Bot, bot_client: APIClient) -> None:
    for n in range(3):
        make_trade(bot, trade_id=f"t{n}", entry_time=ODD_MOMENT + timedelta(seconds=n))
    make_trade(bot, trade_id="t3", entry_time=T0 + timedelta(seconds=5))

    first = bot_client.get("/api/v1/trades/?page_size=2&symbol=BTC%2FUSDT").json()
    second = bot_client.get(first["next"]).json()
    back = bot_client.get(second["previous"]).json()

    # The cursor holds (entry_time, id) as isoformat() writes them (base64 of this JSON).
    assert first["next"].startswith("http://testserver/api/v1/trades/?")
    assert [t["trade_id"] for t in first["results"]] == ["t3", "t2"]
    assert [t["trade_id"] for t in second["results"]] == ["t1", "t0"]
    assert [t["trade_id"] for t in back["results"]] == ["t3", "t2"]
    assert second["next"] is None
    assert [t["entry_time"] for t in second["results"]] == [
        "2026-01-05T12:00:01.000160Z",
        "2026-01-05T12:00:00.000160Z",
    ]


def test_a_json_value_no_float_holds_is_answered_not_a_500(bot: Bot, bot_client: APIClient) -> None:
    # jsonb holds 10**400 + 0.5 exactly (the API's parser reads numbers as Decimal:
    # trading/api/parsers.py); json.loads reads it as an infinity that JSON cannot write, and
    # DRF's renderer failed on it (a 500). It is answered as PostgreSQL writes it.
    huge = "1" + "0" * 400 + ".5"
    trade = make_trade(bot)
    Trade.objects.filter(pk=trade.pk).update(
        strategy_data=RawSQL("%s::jsonb", (f'{{"edge": {huge}, "f": 0.5}}',))
    )

    response = bot_client.get("/api/v1/trades/")

    assert response.status_code == 200
    assert f'"strategy_data":{{"f": 0.5, "edge": {huge}}},"created_at"'.encode() in response.content


def test_compact_json_writes_what_json_dumps_writes() -> None:
    assert (
        compact_json('{"a": 1.50, "b": [1, 2.0, "x, y: z"]}') == '{"a":1.5,"b":[1,2.0,"x, y: z"]}'
    )
    assert compact_json("{}") == "{}"
    assert compact_json("[]") == "[]"
