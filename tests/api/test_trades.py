"""POST trades/: upsert by (bot, trade_id), every bad item named, nothing half-written."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/"


def trade(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trade_id": f"T-{n}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "0.5",
        "entry_price": "60000",
        "entry_time": "2026-01-05T12:00:00Z",
    }
    body.update(fields)
    return body


def closed(n: int = 1, **fields: Any) -> dict[str, Any]:
    values = {
        "status": "closed",
        "exit_price": "61000.5",
        "exit_time": "2026-01-05T13:30:00+00:00",
        "fees_usd": "12.25",
    }
    values.update(fields)
    return trade(n, **values)


def test_one_trade_is_created_with_server_computed_pnl(bot: Bot, bot_client: APIClient) -> None:
    response = bot_client.post(URL, closed(), format="json")
    assert (response.status_code, response.json()) == (
        200,
        {"created": 1, "updated": 0, "unchanged": 0},
    )
    stored = Trade.objects.get()
    # (61000.5 - 60000) x 0.5 - 12.25 = 488.00; / (0.5 x 60000) x 100 = 1.626667 %
    assert (stored.bot_id, stored.pnl_usd, stored.pnl_pct) == (
        "momentum_001",
        Decimal("488.00000000"),
        Decimal("1.626667"),
    )
    assert stored.source == bot.mode


def test_a_batch_upserts_and_counts_created_updated_unchanged(bot_client: APIClient) -> None:
    bot_client.post(URL, [trade(1), trade(2)], format="json")
    response = bot_client.post(URL, [trade(1), closed(2), trade(3)], format="json")
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 1}
    assert sorted(Trade.objects.values_list("trade_id", "status")) == [
        ("T-1", "open"),
        ("T-2", "closed"),
        ("T-3", "open"),
    ]


def test_money_sent_as_a_json_number_is_read_from_its_text(bot_client: APIClient) -> None:
    body = (
        '{"trade_id": "F", "symbol": "ETH/USDT", "exchange": "binance", "side": "short",'
        ' "quantity": 0.1, "entry_price": 3000.1234567891, "entry_time": "2026-01-05T12:00:00Z"}'
    )
    response = bot_client.post(URL, body, content_type="application/json")
    assert response.status_code == 200
    stored = Trade.objects.get()
    assert (stored.quantity, stored.entry_price) == (Decimal("0.1"), Decimal("3000.1234567891"))


def test_a_batch_with_bad_items_names_each_and_writes_nothing(bot_client: APIClient) -> None:
    bot_client.post(URL, trade(9), format="json")
    body = [
        trade(1),
        trade(2, quantity="0"),
        trade(3, side="sideways", price="1"),
        closed(4, exit_time="2026-01-05T11:00:00Z"),
        trade(5, entry_time="2026-01-05 12:00:00"),
        trade(1, quantity="2"),
    ]
    response = bot_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "field": "quantity", "reason": "must be greater than 0"},
        {"index": 2, "field": "price", "reason": "unknown field"},
        {"index": 2, "field": "side", "reason": "must be one of: long, short"},
        {"index": 3, "field": "exit_time", "reason": "must not be before entry_time"},
        {
            "index": 4,
            "field": "entry_time",
            "reason": "must carry a UTC offset (e.g. 'Z' or '+00:00')",
        },
        {"index": 5, "field": "trade_id", "reason": "repeats the key of item 0 in this batch"},
    ]
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["T-9"]


def test_server_owned_fields_are_refused(bot_client: APIClient) -> None:
    response = bot_client.post(URL, trade(1, id=5, pnl_pct="3"), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "id", "reason": "is set by the server"},
        {"field": "pnl_pct", "reason": "is set by the server"},
    ]
    assert Trade.objects.count() == 0


def test_another_bots_id_in_the_body_is_forbidden(bot_client: APIClient) -> None:
    response = bot_client.post(URL, [trade(1), trade(2, bot_id="shortseller_001")], format="json")
    assert response.status_code == 403
    assert Trade.objects.count() == 0


def test_no_token_is_401_and_a_staff_token_cannot_write(staff_client: APIClient) -> None:
    assert APIClient().post(URL, trade(), format="json").status_code == 401
    assert staff_client.post(URL, trade(), format="json").status_code == 403
    assert Trade.objects.count() == 0


def test_an_idempotency_key_replays_the_first_answer(bot_client: APIClient) -> None:
    first = bot_client.post(URL, [trade(1)], format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = bot_client.post(URL, [trade(1)], format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = bot_client.post(URL, [trade(2)], format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json() == again.json() == {"created": 1, "updated": 0, "unchanged": 0}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["T-1"]


def test_a_time_with_no_utc_equivalent_is_a_400_not_a_500(bot_client: APIClient) -> None:
    response = bot_client.post(URL, trade(entry_time="0001-01-01T00:00:00+01:00"), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "entry_time", "reason": "must be between 1970 and 9998"}
    ]
    assert Trade.objects.count() == 0


def _prepared(start: str) -> int:
    """How many statements this session prepared that begin with ``start``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE ltrim(statement, chr(10) || ' ') LIKE %s",
            [f"{start}%"],
        )
        (count,) = cursor.fetchone()
    return int(count)


def test_the_token_look_up_and_the_upsert_are_prepared_on_the_connection(
    bot_client: APIClient,
) -> None:
    """Planning the upsert took about as long as running it: from the 5th send on a connection
    the server runs the statement it prepared. What Django reports as run still shows the
    values (debug logs, captured queries)."""
    now = timezone.now()
    entered = max(datetime.combine(now.date(), time(), UTC), now - timedelta(minutes=1))
    # Batches of one: a single trade takes trading.api.trades_single's one statement (pinned in
    # tests/api/test_trade_single.py); a batch, the look-up and the upsert pinned here.
    for n in range(6):
        response = bot_client.post(URL, [trade(n, entry_time=entered.isoformat())], format="json")
        assert response.json() == {"created": 1, "updated": 0, "unchanged": 0}
    with CaptureQueriesContext(connection) as queries:
        bot_client.post(URL, [trade(6, entry_time=entered.isoformat())], format="json")

    # The look-up, and the upsert without the late trades' marking (which starts WITH); behind
    # PgBouncer 1.18 (no max_prepared_statements) nothing is prepared (prepare_threshold None).
    prepared = 0 if settings.DATABASE_PGBOUNCER else 1
    assert (_prepared('SELECT t."id", t."key_hash"'), _prepared("INSERT INTO trading.trades")) == (
        prepared,
        prepared,
    )
    assert Trade.objects.count() == 7
    upsert = [q["sql"] for q in queries.captured_queries if "INSERT INTO trading." in q["sql"]]
    assert len(upsert) == 1
    assert "'{\"T-6\"}'::text[]" in upsert[0]
    assert "$1" not in upsert[0]
