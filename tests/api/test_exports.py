"""?format=csv|parquet on the list endpoints: every exported column read back equals the
database's value exactly (Decimal text and scale, the microsecond, null against empty text),
the same filters and authentication as the JSON, and errors as JSON."""

import io
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.db.models import Model
from rest_framework.test import APIClient

from audit.models import RiskEvent
from tests.factories import T0, make_fill, make_order, make_position, make_trade
from trading.api.exports import arrow_type
from trading.models import Bot, Order, OrderFill, Position, Trade
from trading.selectors.exports import ExportColumn, export_columns

URLS = {
    "trades": "/api/v1/trades/",
    "orders": "/api/v1/orders/",
    "fills": "/api/v1/fills/",
    "positions": "/api/v1/positions/",
    "risk_events": "/api/v1/risk-events/",
}
NASTY = 'comma, "quote"\nnew line; ünïcødé ✓'


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(data: bytes) -> tuple[list[str], list[list[str | None]]]:
    """RFC 4180 read by hand, because an unquoted empty field (NULL) must differ from a quoted
    one (empty text), which Python 3.12's csv module cannot tell apart."""
    text = data.decode()
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            end = i + 1
            value = []
            while True:
                quote = text.index('"', end)
                value.append(text[end:quote])
                if text[quote + 1 : quote + 2] == '"':
                    value.append('"')
                    end = quote + 2
                    continue
                break
            row.append("".join(value))
            i = quote + 1
        else:
            end = min(j for j in (text.find(",", i), text.find("\n", i), len(text)) if j >= 0)
            row.append(text[i:end] or None)
            i = end
        if i >= len(text) or text[i] == "\n":
            rows.append(row)
            row = []
        i += 1
    header, *body = rows
    return [str(h) for h in header], body


def from_text(column: ExportColumn, text: str | None) -> Any:
    if text is None:
        return None
    if column.kind == "decimal":
        return Decimal(text)
    if column.kind == "datetime":
        assert text.endswith("Z")
        return datetime.fromisoformat(text)
    if column.kind == "integer":
        return int(text)
    if column.kind == "boolean":
        assert text in ("true", "false")
        return text == "true"
    if column.kind == "json":
        return json.loads(text)
    return text


def database_rows(model: type[Model], columns: list[ExportColumn]) -> dict[int, dict[str, Any]]:
    rows = model._default_manager.values("pk", *(c.path for c in columns))
    return {row["pk"]: {c.name: row[c.path] for c in columns} for row in rows}


def assert_same(column: ExportColumn, got: Any, want: Any) -> None:
    if column.kind == "json" and isinstance(got, str):
        got = json.loads(got)
    assert got == want, column.name
    if column.kind == "decimal" and want is not None:
        # the exact text, the column's scale included (not only an equal number)
        assert str(got) == str(want), column.name
        assert want.as_tuple().exponent == -(column.places or 0)


def check_round_trip(
    client: APIClient, url: str, model: type[Model], expected_rows: int
) -> list[ExportColumn]:
    view_columns = None
    csv_response = client.get(url, {"format": "csv"})
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response["Content-Disposition"].startswith("attachment; filename=")
    header, rows = csv_rows(body_of(csv_response))
    json_response = client.get(url, {"page_size": 1000})
    json_rows = json_response.json()["results"]
    assert header == list(json_rows[0])  # the JSON's names, in its order
    view_columns = _columns_of(model, header)
    db = database_rows(model, view_columns)
    assert len(rows) == len(db) == expected_rows
    assert [int(r[0] or 0) for r in rows] == [r["id"] for r in json_rows]  # the list's order
    for row in rows:
        want = db[int(row[0] or 0)]
        for column, text in zip(view_columns, row, strict=True):
            assert_same(column, from_text(column, text), want[column.name])

    parquet_response = client.get(url, {"format": "parquet"})
    assert parquet_response.status_code == 200
    assert parquet_response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body_of(parquet_response)))
    for column in view_columns:
        assert table.schema.field(column.name).type == arrow_type(column), column.name
    table_rows = table.to_pylist()
    assert [r["id"] for r in table_rows] == [r["id"] for r in json_rows]
    for row in table_rows:
        want = db[row["id"]]
        for column in view_columns:
            assert_same(column, row[column.name], want[column.name])
    return view_columns


def _columns_of(model: type[Model], names: list[str]) -> list[ExportColumn]:
    paths = {}
    if model is OrderFill:
        paths = {
            "bot_id": "order__bot_id",
            "client_order_id": "order__client_order_id",
            "symbol": "order__symbol",
        }
    return export_columns(model, names, paths)


@pytest.fixture
def varied(bot: Bot, other_bot: Bot) -> dict[str, Any]:
    """Rows whose every column holds something that a sloppy export would get wrong."""
    trades = [
        make_trade(
            bot,
            quantity=Decimal("123456789012345678.0123456789"),  # every digit of NUMERIC(28, 10)
            entry_price=Decimal("0.0000000001"),
            entry_time=T0 + timedelta(microseconds=160),
            status="closed",
            exit_price=Decimal("0.0000000002"),
            exit_time=T0 + timedelta(days=1, microseconds=999999),
            fees_usd=Decimal("-0.00000001"),
            pnl_usd=Decimal("-999999999999.99999999"),
            pnl_pct=Decimal("-123456.123456"),
            exit_reason=NASTY,
            entry_tag="",
            strategy_data={"text": NASTY, "n": 1.5, "nested": {"a": [1, None, True]}},
        ),
        make_trade(bot, entry_time=T0 - timedelta(days=3), exit_reason="", strategy_data={}),
        make_trade(other_bot, symbol="ETH/USDT:USDT", entry_time=T0 - timedelta(days=1)),
    ]
    order = make_order(bot, trade=trades[0], last_error=NASTY, metadata={"k": NASTY})
    make_order(other_bot, price=None)
    fills = [
        make_fill(order, fee=Decimal("0.1234567891"), fee_currency="BNB"),
        make_fill(order, filled_at=T0 + timedelta(seconds=1, microseconds=5), fee_currency=""),
    ]
    positions = [
        make_position(bot, current_price=None, stop_loss=Decimal("59000.5")),
        make_position(
            other_bot, symbol="ETH/USDT", trailing_stop_pct=Decimal("1.5"), metadata={"x": [1]}
        ),
    ]
    RiskEvent.objects.create(
        ts=T0,
        bot=bot,
        event_type="daily_loss_limit",
        limit_value=Decimal("500"),
        actual_value=Decimal("512.3456789012"),
        resolved=True,
        resolved_at=T0 + timedelta(hours=2),
        resolution_note=NASTY,
        details={"why": NASTY},
    )
    RiskEvent.objects.create(
        ts=T0 - timedelta(hours=1), bot=other_bot, event_type="stale_heartbeat"
    )
    return {"trades": trades, "fills": fills, "positions": positions}


@pytest.mark.parametrize(
    ("name", "model", "rows"),
    [
        ("trades", Trade, 3),
        ("orders", Order, 2),
        ("fills", OrderFill, 2),
        ("positions", Position, 2),
        ("risk_events", RiskEvent, 2),
    ],
)
def test_every_exported_column_reads_back_as_the_database_holds_it(
    staff_client: APIClient, varied: dict[str, Any], name: str, model: type[Model], rows: int
) -> None:
    columns = check_round_trip(staff_client, URLS[name], model, rows)
    assert {c.kind for c in columns} >= {"decimal", "datetime", "integer", "text"}


def test_parquet_types_are_the_columns_own(staff_client: APIClient, varied: dict[str, Any]) -> None:
    response = staff_client.get(URLS["trades"], {"format": "parquet"})
    table = pq.read_table(io.BytesIO(body_of(response)))
    schema = table.schema
    assert schema.field("quantity").type == pa.decimal128(28, 10)
    assert schema.field("pnl_usd").type == pa.decimal128(20, 8)
    assert schema.field("pnl_pct").type == pa.decimal128(12, 6)
    assert schema.field("entry_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("id").type == pa.int64()
    assert schema.field("strategy_data").type == pa.string()


def test_csv_text_is_the_columns_text(staff_client: APIClient, varied: dict[str, Any]) -> None:
    header, rows = csv_rows(body_of(staff_client.get(URLS["trades"], {"format": "csv"})))
    first = dict(zip(header, rows[0], strict=True))
    assert first["quantity"] == "123456789012345678.0123456789"
    assert first["entry_price"] == "0.0000000001"
    assert first["fees_usd"] == "-0.00000001"
    assert first["leverage"] == "1.000000"
    assert first["entry_time"] == "2026-01-05T12:00:00.000160Z"
    assert first["exit_time"] == "2026-01-06T12:00:00.999999Z"
    assert first["exit_reason"] == NASTY
    assert first["entry_tag"] == ""  # empty text, not null
    assert first["position"] is None  # null
    second = dict(zip(header, rows[1], strict=True))
    assert second["entry_time"] == "2026-01-04T12:00:00Z"  # whole seconds as the JSON has them


def test_filters_and_a_bots_token_apply_as_to_the_json(
    staff_client: APIClient, bot_client: APIClient, varied: dict[str, Any]
) -> None:
    eth = staff_client.get(URLS["trades"], {"format": "csv", "symbol": "ETH/USDT:USDT"})
    _, rows = csv_rows(body_of(eth))
    assert [r[3] for r in rows] == ["ETH/USDT:USDT"]
    closed = staff_client.get(URLS["trades"], {"format": "csv", "status": ["closed", "cancelled"]})
    header, rows = csv_rows(body_of(closed))
    assert [len(r) for r in rows] == [len(header)]  # a multiple-choice filter adds no column
    assert [r[header.index("status")] for r in rows] == ["closed"]
    parquet = staff_client.get(URLS["positions"], {"format": "parquet", "status": "open"})
    assert pq.read_table(io.BytesIO(body_of(parquet))).num_rows == 2
    _, rows = csv_rows(body_of(bot_client.get(URLS["trades"], {"format": "csv"})))
    assert sorted(str(r[1]) for r in rows) == ["momentum_001", "momentum_001"]
    _, rows = csv_rows(body_of(bot_client.get(URLS["fills"], {"format": "csv"})))
    assert len(rows) == 2
    other = staff_client.get(URLS["fills"], {"format": "csv", "bot_id": "shortseller_001"})
    _, rows = csv_rows(body_of(other))
    assert rows == []


def test_json_is_unchanged_and_a_bad_format_is_a_400_naming_it(
    staff_client: APIClient, varied: dict[str, Any]
) -> None:
    plain = staff_client.get(URLS["trades"])
    as_json = staff_client.get(URLS["trades"], {"format": "json"})
    assert as_json.status_code == 200
    assert as_json.content == plain.content
    assert as_json["Content-Type"] == "application/json"
    bad = staff_client.get(URLS["trades"], {"format": "xlsx"})
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/json"
    reason = "must be one of json, csv, parquet"
    assert bad.json()["errors"] == [{"field": "format", "reason": reason}]


def test_an_export_refused_is_answered_in_json(
    staff_client: APIClient, varied: dict[str, Any]
) -> None:
    anonymous = APIClient().get(URLS["trades"], {"format": "csv"})
    assert anonymous.status_code == 401
    assert anonymous["Content-Type"] == "application/json"
    bad_filter = staff_client.get(URLS["trades"], {"format": "csv", "since": "yesterday"})
    assert bad_filter.status_code == 400
    assert bad_filter["Content-Type"] == "application/json"
    assert bad_filter.json()["errors"][0]["field"] == "since"


def test_accept_header_chooses_csv_too(staff_client: APIClient, varied: dict[str, Any]) -> None:
    response = staff_client.get(URLS["positions"], HTTP_ACCEPT="text/csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, rows = csv_rows(body_of(response))
    assert header[:3] == ["id", "bot_id", "symbol"] and len(rows) == 2


@pytest.mark.django_db(transaction=True)
def test_an_export_left_halfway_ends_its_copy_and_transaction(bot: Bot) -> None:
    from trading.selectors.exports import export_csv_chunks

    Trade.objects.bulk_create(
        Trade(
            bot=bot,
            trade_id=f"t{i}",
            symbol="BTC/USDT",
            exchange="binance",
            side="long",
            quantity=Decimal(1),
            entry_price=Decimal(100),
            entry_time=T0 + timedelta(seconds=i),
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        (timeout,) = cursor.fetchone()
    newest = Trade.objects.order_by("-entry_time").values_list("pk", flat=True)[0]
    columns = export_columns(Trade, ["id", "trade_id", "quantity", "entry_time"])
    chunks = export_csv_chunks(
        Trade.objects.all(), columns, ordering=("-entry_time", "-id"), chunk_bytes=1000
    )
    first = next(chunks)
    assert first.startswith(f"{newest},t2999,1.0000000000,2026-01-05T12:49:59Z\n".encode())
    chunks.close()
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:  # the connection is usable, outside any transaction
        cursor.execute("SELECT count(*), current_setting('statement_timeout') FROM trading.trades")
        assert cursor.fetchone() == (3000, timeout)
