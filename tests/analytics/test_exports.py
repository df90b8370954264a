"""?format=csv|parquet on the performance and breakdown reads, and the dashboard's export links:
every exported value equals the JSON's (decimals as their exact text, Decimal in Parquet)."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from audit.models import RiskEvent
from tests.api.test_exports import body_of, csv_rows
from tests.factories import T0, make_bot, make_closed_trade, make_position
from trading.models import Bot
from trading.services.tokens import staff_token_create


@pytest.fixture
def traded(db: None) -> Bot:
    bot = make_bot("momentum_001", initial_capital_usd=Decimal("10000"))
    for day, pnl, reason in [
        (0, Decimal("125.12345678"), "roi"),
        (0, Decimal("-25.5"), ""),
        (1, Decimal("0"), "stop_loss"),
        (40, Decimal("1000000.00000001"), "roi"),
    ]:
        make_closed_trade(
            bot,
            pnl_usd=pnl,
            exit_reason=reason,
            entry_time=T0 + timedelta(days=day),
            exit_time=T0 + timedelta(days=day, hours=3),
            fees_usd=Decimal("0.00000001"),
        )
    return bot


@pytest.fixture
def staff() -> APIClient:
    client = APIClient()
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token_create(user=user).key}")
    return client


def _typed(value: str | None, json_value: object) -> object:
    """A CSV text as the JSON's type: a decimal string stays text, a number a float."""
    if value is None:
        return None
    if isinstance(json_value, bool):
        return value == "true"
    if isinstance(json_value, int):
        return int(value)
    if isinstance(json_value, float):
        return float(value)
    return value


@pytest.mark.parametrize(
    ("url", "query", "rows"),
    [
        ("/api/v1/bots/momentum_001/performance/", {"period": "day"}, 3),
        ("/api/v1/bots/momentum_001/performance/", {"period": "month"}, 2),
        ("/api/v1/bots/momentum_001/breakdown/", {"by": "exit_reason"}, 3),
        ("/api/v1/portfolio/performance/", {"period": "day"}, 3),
    ],
)
def test_csv_and_parquet_hold_the_jsons_rows_exactly(
    traded: Bot, staff: APIClient, url: str, query: dict[str, str], rows: int
) -> None:
    expected = staff.get(url, query).json()["rows"]
    assert len(expected) == rows
    header, got = csv_rows(body_of(staff.get(url, {**query, "format": "csv"})))
    assert header == list(expected[0])
    assert [
        {n: _typed(v, want[n]) for n, v in zip(header, row, strict=True)}
        for row, want in zip(got, expected, strict=True)
    ] == expected  # a decimal's text as the JSON's string: "0.00000000", never 0E-8

    table = pq.read_table(io.BytesIO(body_of(staff.get(url, {**query, "format": "parquet"}))))
    for name in header:
        if name.endswith("_usd"):
            assert table.schema.field(name).type == pa.decimal128(38, 8)
    for row, want in zip(table.to_pylist(), expected, strict=True):
        for name, value in row.items():
            if isinstance(value, Decimal):
                assert format(value, "f") == want[name]  # the scale kept: 8 places
            elif isinstance(value, date):
                assert value.isoformat() == want[name]
            else:
                assert value == want[name], name


def test_an_empty_reason_is_empty_text_and_a_null_return_is_null(
    traded: Bot, staff: APIClient
) -> None:
    url = "/api/v1/bots/momentum_001/breakdown/"
    header, rows = csv_rows(body_of(staff.get(url, {"by": "exit_reason", "format": "csv"})))
    assert [row[0] for row in rows] == ["roi", "stop_loss", ""]
    broke = make_bot("broke_001", initial_capital_usd=Decimal("1"))
    make_closed_trade(broke, pnl_usd=Decimal("-2"), exit_time=T0 + timedelta(hours=1))
    make_closed_trade(broke, pnl_usd=Decimal("1"), exit_time=T0 + timedelta(days=1, hours=1))
    perf = "/api/v1/bots/broke_001/performance/"
    header, rows = csv_rows(body_of(staff.get(perf, {"format": "csv"})))
    returns = [dict(zip(header, row, strict=True))["return_pct"] for row in rows]
    assert returns == ["-200.0", None]  # no return on a starting equity of -1
    table = pq.read_table(io.BytesIO(body_of(staff.get(perf, {"format": "parquet"}))))
    assert [row["return_pct"] for row in table.to_pylist()] == [-200.0, None]


def test_every_export_link_of_the_dashboard_answers_its_format(traded: Bot) -> None:
    make_position(traded)
    RiskEvent.objects.create(ts=T0, bot=traded, event_type="drawdown_limit")
    user = User.objects.create_user("desk", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    links = []
    for page in ("/dashboard/", "/dashboard/bots/momentum_001/"):
        html = client.get(page).content.decode()
        links += re.findall(r'<a href="([^"]+)" download>', html)
    assert len(links) == 16  # 4 tables a page, 2 formats each
    assert "/api/v1/positions/?status=open&amp;format=csv" in links
    assert "/api/v1/trades/?bot_id=momentum_001&amp;format=parquet" in links
    for link in links:
        response = client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        fmt = link.rsplit("=", 1)[-1]
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
        assert response["Content-Type"] == media
        body = body_of(response)
        if fmt == "parquet":
            assert body.startswith(b"PAR1") and pq.read_table(io.BytesIO(body)).num_rows >= 1
        else:
            assert body.count(b"\n") >= 2, link  # the header and at least one row
