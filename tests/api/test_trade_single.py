"""One trade by trading.api.trades_single: a bot token this process knows, a trade entered
today, no Idempotency-Key. One statement checks the token, notes its use and upserts the trade;
what it stores and answers is what DRF's path stores and answers, and every refusal (a revoked
token, a foreign bot_id, a row PostgreSQL refuses, the rate) is DRF's path's, counted once.

Transactional tests: a test wrapped in a transaction would add savepoints production does not
run, and a revocation by hand must be committed to count.
"""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from tests.api.conftest import client_with
from tests.api.test_limits import WINDOW, fresh_counters  # noqa: F401 - a fixture
from trading.models import ApiToken, Bot, Trade
from trading.services.ingest.trades import TRADE_COLUMNS
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/trades/"
COLUMNS = [name for name, _ in TRADE_COLUMNS]


def _today() -> datetime:
    """A moment today (UTC), a minute ago unless that was yesterday."""
    now = timezone.now()
    return max(datetime.combine(now.date(), time(), UTC), now - timedelta(minutes=1))


ENTERED = _today()


def trade(n: int, **fields: Any) -> dict[str, Any]:
    entered = ENTERED
    body: dict[str, Any] = {
        "trade_id": f"S-{n}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "short",
        "quantity": "0.0125",
        "entry_price": "60000.5",
        "entry_time": entered.isoformat(),
        "status": "closed",
        "exit_price": "59900.25",
        "exit_time": (entered + timedelta(seconds=30)).isoformat(),
        "fees_usd": "0.75",
        "exit_reason": "take_profit",
        "strategy_data": {"rsi": 61, "atr": "412.5"},
    }
    body.update(fields)
    return body


@pytest.fixture
def known(bot: Bot) -> tuple[APIClient, ApiToken]:
    """A bot's client after one POST by DRF's path, which makes the token known here."""
    issued = bot_token_create(bot=bot)
    client = client_with(issued.key)
    assert client.post(URL, [trade(0)], format="json").status_code == 200
    return client, issued.token


def stored(trade_id: str) -> dict[str, Any]:
    return Trade.objects.filter(trade_id=trade_id).values(*COLUMNS).get()


def test_a_known_tokens_trade_is_one_statement(
    known: tuple[APIClient, ApiToken], django_assert_num_queries: Callable[..., Any]
) -> None:
    client, _ = known
    with django_assert_num_queries(1) as captured:
        response = client.post(URL, trade(1), format="json")

    assert (response.status_code, response.json()) == (
        200,
        {"created": 1, "updated": 0, "unchanged": 0},
    )
    assert captured.captured_queries[0]["sql"].lstrip().startswith("WITH token AS")
    # Stored as DRF's path stores the same trade (S-0 was sent as a batch of one).
    first, second = stored("S-0"), stored("S-1")
    assert {**second, "trade_id": "S-0"} == first
    # (60000.5 - 59900.25) x 0.0125 - 0.75 for a short; / (0.0125 x 60000.5) x 100
    assert (second["pnl_usd"], second["pnl_pct"], second["source"]) == (
        Decimal("0.50312500"),
        Decimal("0.067083"),
        "paper",
    )


def test_answers_and_headers_are_drfs(known: tuple[APIClient, ApiToken]) -> None:
    client, _ = known
    answers = [
        client.post(URL, trade(1), format="json"),
        client.post(URL, trade(1), format="json"),
        client.post(URL, trade(1, fees_usd="1.5"), format="json"),
    ]
    generic = client.post(URL, [trade(2)], format="json")

    assert [a.json() for a in answers] == [
        {"created": 1, "updated": 0, "unchanged": 0},
        {"created": 0, "updated": 0, "unchanged": 1},
        {"created": 0, "updated": 1, "unchanged": 0},
    ]
    for answer in answers:
        assert (answer["Content-Type"], answer["Allow"]) == (
            generic["Content-Type"],
            generic["Allow"],
        )
    assert answers[0].content == generic.content == b'{"created":1,"updated":0,"unchanged":0}'
    assert stored("S-1")["fees_usd"] == Decimal("1.5")


def test_a_token_revoked_by_hand_in_sql_writes_nothing_at_once(
    known: tuple[APIClient, ApiToken],
) -> None:
    client, token = known
    assert client.post(URL, trade(1), format="json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("UPDATE trading.api_tokens SET revoked_at = now() WHERE id = %s", [token.pk])

    response = client.post(URL, trade(2), format="json")

    assert (response.status_code, response.json()["detail"]) == (401, "Unknown or revoked token.")
    assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["S-0", "S-1"]


def test_a_foreign_bot_id_is_403_and_writes_nothing(known: tuple[APIClient, ApiToken]) -> None:
    client, _ = known

    response = client.post(URL, trade(1, bot_id="shortseller_001"), format="json")

    assert response.status_code == 403
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["S-0"]


def test_the_source_is_the_bots_mode_when_the_trade_is_written(
    bot: Bot, known: tuple[APIClient, ApiToken]
) -> None:
    client, _ = known
    Bot.objects.filter(pk=bot.pk).update(mode="live")

    assert client.post(URL, trade(1), format="json").status_code == 200
    assert client.post(URL, trade(2, source="backtest"), format="json").status_code == 200

    assert (stored("S-0")["source"], stored("S-1")["source"], stored("S-2")["source"]) == (
        "paper",
        "live",
        "backtest",
    )


def test_last_use_is_noted_at_most_once_a_minute(known: tuple[APIClient, ApiToken]) -> None:
    client, token = known
    long_ago = timezone.now() - timedelta(minutes=5)
    recently = timezone.now() - timedelta(seconds=10)

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)
    client.post(URL, trade(1), format="json")
    noted = ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recently)
    client.post(URL, trade(2), format="json")

    assert noted is not None and noted > timezone.now() - timedelta(seconds=30)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == recently


@pytest.mark.usefixtures("fresh_counters")
def test_every_request_is_counted_once_refused_or_not(bot: Bot) -> None:
    issued = bot_token_create(bot=bot)
    client = client_with(issued.key)
    with override_settings(API_THROTTLE_RATE="4/min"):
        answers = [
            client.post(URL, [trade(0)], format="json"),  # DRF's path: the token becomes known
            client.post(URL, trade(1), format="json"),
            # Exit before entry: the table's CHECK refuses it, DRF's path names the field.
            client.post(URL, trade(2, exit_time="2026-01-01T00:00:00Z"), format="json"),
            client.post(URL, trade(3), format="json"),
            client.post(URL, trade(4), format="json"),
        ]

    assert [a.status_code for a in answers] == [200, 200, 400, 200, 429]
    assert {"field": "exit_time", "reason": "must not be before entry_time"} in answers[2].json()[
        "errors"
    ]
    assert (answers[4].json()["error"], answers[4]["Retry-After"]) == ("throttled", "30")
    assert cache.get(f"throttle:token:{issued.token.pk}:{WINDOW}") == 5
    assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["S-0", "S-1", "S-3"]


def test_with_redis_down_the_trade_is_written(
    known: tuple[APIClient, ApiToken], settings: SettingsWrapper
) -> None:
    client, _ = known
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}
    }

    response = client.post(URL, trade(1), format="json")

    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0}
    assert Trade.objects.filter(trade_id="S-1").exists()


def test_the_statement_is_prepared_on_the_connection(known: tuple[APIClient, ApiToken]) -> None:
    client, _ = known
    for n in range(1, 8):
        assert client.post(URL, trade(n), format="json").status_code == 200

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE ltrim(statement, chr(10) || ' ') LIKE 'WITH token AS%%'"
        )
        (count,) = cursor.fetchone()
    assert count == (0 if settings.DATABASE_PGBOUNCER else 1)
