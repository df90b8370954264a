"""The same batch sent 20 times, 5 at once, through a real server: one row per trade and
one answer, whatever the interleaving."""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.factories import make_bot
from trading.models import IdempotencyKey, Trade
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = [
    {
        "trade_id": f"R-{n}",
        "symbol": "SOL/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "3",
        "entry_price": "150.25",
        "entry_time": "2026-02-01T00:00:00Z",
        "status": "closed",
        "exit_price": "151",
        "exit_time": "2026-02-01T01:00:00Z",
    }
    for n in range(50)
]


def send(url: str, token: str, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url, data=json.dumps(BATCH).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def test_a_keyed_batch_sent_20_times_5_at_once_writes_once_and_answers_alike(
    live_server: Any,
) -> None:
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/trades/"
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: send(url, token, "batch-7"), range(20)))
    assert answers == [(200, {"created": 50, "updated": 0, "unchanged": 0})] * 20
    assert Trade.objects.count() == 50
    assert IdempotencyKey.objects.count() == 1


def test_an_unkeyed_batch_sent_20_times_5_at_once_still_writes_one_row_per_trade(
    live_server: Any,
) -> None:
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/trades/"
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: send(url, token, None), range(20)))
    created = sorted(body["created"] for _, body in answers)
    # Racing upserts: each trade is created by exactly one request and found by the others.
    assert sum(created) == 50
    assert all(status == 200 for status, _ in answers)
    assert all(body["updated"] == 0 for _, body in answers)
    assert all(body["created"] + body["unchanged"] == 50 for _, body in answers)
    assert Trade.objects.count() == 50
