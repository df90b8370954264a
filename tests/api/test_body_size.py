"""Every documented maximum is accepted: 5,000 trades with their strategy_data, 50,000 candles,
any body up to API_MAX_BODY_BYTES (16 MiB); one byte more is a JSON 413. Django's own limit on
bodies it reads into memory (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MiB) still guards form posts."""

import json
import urllib.request
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.test_limits import trade
from tests.api.test_market_and_state import candle
from tests.factories import make_bot
from trading.models import MarketData, Trade
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

TRADES = "/api/v1/trades/"
MARKET = "/api/v1/market-data/"
DJANGO_FORM_LIMIT = 2_621_440  # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE


def post_raw(client: APIClient, url: str, body: bytes) -> Any:
    return client.post(url, body, content_type="application/json")


def test_5000_trades_with_a_few_hundred_bytes_of_strategy_data_each_are_written(
    bot_client: APIClient,
) -> None:
    body = with_strategy_data(5_000)
    assert len(body) > DJANGO_FORM_LIMIT  # beyond what Django reads into memory by itself

    response = post_raw(bot_client, TRADES, body)

    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == 5_000
    assert Trade.objects.count() == 5_000
    assert Trade.objects.get(trade_id="L-4999").strategy_data["reason"] == "breakout " * 40


def with_strategy_data(count: int) -> bytes:
    strategy_data = {"reason": "breakout " * 40, "rsi": "28.5", "ema": [1, 2, 3]}  # ~400 bytes
    return json.dumps([trade(n) | {"strategy_data": strategy_data} for n in range(count)]).encode()


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_django_s_limit_goes_through_a_real_http_server(live_server: Any) -> None:
    token = bot_token_create(bot=make_bot("momentum_001", name="Momentum")).key
    body = with_strategy_data(5_000)
    assert len(body) > DJANGO_FORM_LIMIT
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{live_server.url}{TRADES}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )

    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        assert response.status == 200
        assert json.loads(response.read())["created"] == 5_000
    assert Trade.objects.count() == 5_000


def test_50000_candles_are_written(bot_client: APIClient) -> None:
    body = json.dumps([candle(n) for n in range(50_000)]).encode()
    assert len(body) > 3 * DJANGO_FORM_LIMIT

    response = post_raw(bot_client, MARKET, body)

    assert response.status_code == 200, response.content[:500]
    assert response.json() == {"inserted": 50_000, "duplicates": 0}
    assert MarketData.objects.count() == 50_000


def padded(size: int) -> bytes:
    """One trade, padded with JSON whitespace to exactly ``size`` bytes."""
    core = json.dumps(trade(1)).encode()
    return core + b" " * (size - len(core))


def test_a_body_of_exactly_the_limit_is_written_one_byte_more_is_a_json_413(
    bot_client: APIClient,
) -> None:
    limit = settings.API_MAX_BODY_BYTES
    assert limit == 16 * 1024 * 1024  # the documented default, not lowered for the test

    at_limit = post_raw(bot_client, TRADES, padded(limit))
    over = post_raw(bot_client, TRADES, padded(limit + 1))

    assert at_limit.status_code == 200, at_limit.content[:500]
    assert at_limit.json()["created"] == 1
    assert over.status_code == 413
    assert over.headers["Content-Type"] == "application/json"
    assert over.json() == {
        "error": "payload_too_large",
        "detail": f"The body is {limit + 1} bytes; the most this API reads is {limit}.",
    }
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["L-1"]


def test_a_lowered_limit_is_exact_too(bot_client: APIClient, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 3_000_000  # above Django's 2.5 MiB: its limit is not ours

    at_limit = post_raw(bot_client, TRADES, padded(3_000_000))
    over = post_raw(bot_client, TRADES, padded(3_000_001))

    assert at_limit.status_code == 200
    assert over.status_code == 413
    assert over.json()["error"] == "payload_too_large"
    assert Trade.objects.count() == 1


def test_django_still_refuses_a_form_post_over_its_own_limit(db: None) -> None:
    """The admin's forms keep Django's guard: a 3 MB login form is refused, not read."""
    User.objects.create_user("analyst", password="pw", is_staff=True)
    client = Client()
    body = "username=analyst&password=pw&next=" + "x" * 3_000_000

    response = client.post("/admin/login/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
