"""The hot write paths' round trips to PostgreSQL, pinned: a trade POST is the token's look-up
and one upsert, however many trades it carries; a key adds the key's lock, look-up and record.

Transactional tests: a test wrapped in a transaction would add the savepoints the API does not
run in production (trade_upsert_many opens one only inside a caller's transaction).
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/trades/"


def trade(n: int, *, entered: str = "2026-01-05T12:00:00Z", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trade_id": f"Q-{n}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "0.5",
        "entry_price": 60000.25,
        "entry_time": entered,
        "strategy_data": {"rsi": 31.5, "tags": ["a", "b"]},
    }
    body.update(fields)
    return body


def closed(n: int) -> dict[str, Any]:
    return trade(
        n, status="closed", exit_price="61000.5", exit_time="2026-01-05T13:30:00Z", fees_usd=1.25
    )


@pytest.fixture
def warmed(bot_client: APIClient) -> APIClient:
    """The client after one POST: the token's last use is noted (an UPDATE at most once a
    minute), so what follows is what every other request runs."""
    response = bot_client.post(URL, trade(0), format="json")
    assert response.status_code == 200, response.content
    return bot_client


def test_a_single_trade_is_the_token_look_up_and_one_upsert(
    bot: Bot, warmed: APIClient, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(2) as captured:
        response = warmed.post(URL, closed(1), format="json")

    assert (response.status_code, response.json()) == (
        200,
        {"created": 1, "updated": 0, "unchanged": 0},
    )
    sql = [q["sql"] for q in captured.captured_queries]
    assert 'FROM "trading"."api_tokens" t' in sql[0]
    assert "INSERT INTO trading.trades" in sql[1]
    stored = Trade.objects.get(trade_id="Q-1")
    # (61000.5 - 60000.25) x 0.5 - 1.25
    assert (stored.entry_price, stored.pnl_usd, stored.strategy_data) == (
        Decimal("60000.25"),
        Decimal("498.875"),
        {"rsi": Decimal("31.5"), "tags": ["a", "b"]},
    )


def test_a_batch_of_a_thousand_trades_is_still_two_queries(
    bot: Bot, warmed: APIClient, django_assert_num_queries: Callable[..., Any]
) -> None:
    batch = [closed(n) if n % 2 else trade(n) for n in range(1, 1001)]

    with django_assert_num_queries(2):
        response = warmed.post(URL, batch, format="json")

    assert response.json() == {"created": 1000, "updated": 0, "unchanged": 0}
    assert Trade.objects.filter(bot=bot).count() == 1001


def test_an_idempotency_key_adds_its_lock_look_up_and_record(
    bot: Bot, warmed: APIClient, django_assert_num_queries: Callable[..., Any]
) -> None:
    # The key's transaction holds its lock, look-up and record; the upsert keeps its savepoint
    # there (it cannot tell a caller that would go on after a refusal from one that would not).
    with django_assert_num_queries(9) as captured:
        first = warmed.post(URL, closed(1), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    with django_assert_num_queries(5):  # token, BEGIN, lock, the stored answer, COMMIT
        again = warmed.post(URL, closed(1), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.json() == again.json() == {"created": 1, "updated": 0, "unchanged": 0}
    assert again["Idempotent-Replayed"] == "true"
    kinds = [q["sql"].split()[0] for q in captured.captured_queries]
    assert kinds == [
        "SELECT",
        "BEGIN",
        "SELECT",
        "SELECT",
        "SAVEPOINT",
        "WITH",
        "RELEASE",
        "INSERT",
        "COMMIT",
    ]
