"""A fast batch of trades all new to the bot, entered today, is COPied straight into trades
(trading.services.ingest.trades._copied_if_new): one probe, one COPY, no staging table. A batch
with a trade the bot has, or one another session writes meanwhile, is upserted from the
staging table as before: nothing lost, nothing written twice.

Transactional tests: the race needs a second session's real commit.
"""

import threading
from typing import Any

import psycopg
import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.api.test_trade_single import trade
from trading.api.trades_fast import MIN_FAST_TRADES
from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/trades/"


def batch(start: int, size: int = MIN_FAST_TRADES) -> list[dict[str, Any]]:
    return [trade(n) for n in range(start, start + size)]


@pytest.fixture
def warmed(bot_client: APIClient) -> APIClient:
    """The client after one batch: the token's last use is noted (at most once a minute)."""
    assert bot_client.post(URL, batch(0), format="json").status_code == 200
    return bot_client


def kinds(captured: Any) -> list[str]:
    return [q["sql"].split()[0] for q in captured.captured_queries]


def test_a_new_batch_is_the_token_a_probe_and_a_copy(
    warmed: APIClient, django_assert_num_queries: Any
) -> None:
    # The COPY goes by psycopg's own cursor, which Django does not count.
    with django_assert_num_queries(4) as captured:
        response = warmed.post(URL, batch(1_000), format="json")

    assert response.json() == {"created": MIN_FAST_TRADES, "updated": 0, "unchanged": 0}
    assert kinds(captured) == ["SELECT", "BEGIN", "SELECT", "COMMIT"]
    assert Trade.objects.count() == 2 * MIN_FAST_TRADES
    # Stored as the upsert stores them: created_at and updated_at the transaction's time.
    row = Trade.objects.get(trade_id="S-1000")
    assert row.created_at == row.updated_at
    assert (row.source, str(row.pnl_usd)) == ("paper", "0.50312500")


def test_a_batch_with_a_known_trade_is_upserted_from_the_staging_table(
    warmed: APIClient, django_assert_num_queries: Any
) -> None:
    body = batch(50)  # S-50 to S-99 are the bot's already, unchanged
    with django_assert_num_queries(9) as captured:
        response = warmed.post(URL, body, format="json")

    assert response.json() == {"created": 50, "updated": 0, "unchanged": 50}
    assert kinds(captured) == [
        "SELECT",  # the token
        "BEGIN",
        "SELECT",  # the probe: taken
        "COMMIT",
        "BEGIN",
        "CREATE",
        "INSERT",
        "DROP",
        "COMMIT",
    ]
    assert Trade.objects.count() == 150


def test_a_trade_another_session_writes_meanwhile_is_upserted_once(
    bot: Bot, warmed: APIClient
) -> None:
    """The other session inserts S-1050 and holds it uncommitted: the probe does not see it,
    the COPY waits on its key, the other commits, the COPY fails on the key and writes
    nothing, and the upsert from the staging table counts S-1050 as changed."""
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
    with other.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trading.trades (bot_id, trade_id, symbol, exchange, side, quantity,"
            " entry_price, entry_time, fees_usd, status, source, leverage, exit_reason,"
            " entry_tag, strategy_data, created_at, updated_at) VALUES (%s, 'S-1050',"
            " 'ETH/USDT', 'binance', 'long', 1, 2000, now(), 0, 'open', 'paper', 1, '', '',"
            " '{}', now(), now())",
            [bot.bot_id],
        )
    committer = threading.Timer(1.0, other.commit)
    committer.start()
    try:
        response = warmed.post(URL, batch(1_000), format="json")
    finally:
        committer.join()
        other.close()

    assert response.json() == {"created": MIN_FAST_TRADES - 1, "updated": 1, "unchanged": 0}
    sent = [item["trade_id"] for item in batch(1_000)]
    assert Trade.objects.filter(trade_id__in=sent).count() == MIN_FAST_TRADES
    assert Trade.objects.get(trade_id="S-1050").symbol == "BTC/USDT"
