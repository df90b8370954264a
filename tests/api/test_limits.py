"""Limits: the per-token rate (counted in Redis), the body size, and bodies that are not JSON
the API can read. Each is refused with its own status and a reason; none is ever a 500."""

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.test import override_settings
from rest_framework.test import APIClient

from trading.api import throttling
from trading.models import ApiToken, Bot, Trade

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/"
# Mid-window: the test's four requests cannot straddle two windows.
NOW = 1_800_000_030.0  # 30 s into a minute
WINDOW = int(NOW // 60)


def trade(n: int) -> dict[str, Any]:
    return {
        "trade_id": f"L-{n}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "0.5",
        "entry_price": "60000",
        "entry_time": "2026-01-05T12:00:00Z",
    }


@pytest.fixture
def fresh_counters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Counters under a key prefix of their own (no run sees another's), at a fixed moment."""
    prefix = f"atb-test-{uuid.uuid4().hex}"
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: NOW))
    with override_settings(
        CACHES={"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    ):
        yield


def post_raw(client: APIClient, body: bytes | str) -> Any:
    return client.post(URL, body, content_type="application/json")


# --- the rate per token ----------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_counters")
@override_settings(API_THROTTLE_RATE="3/min")
def test_the_fourth_request_in_the_window_gets_429_with_retry_after(
    bot: Bot, bot_client: APIClient, other_bot_client: APIClient
) -> None:
    answers = [bot_client.post(URL, trade(n), format="json") for n in range(1, 5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[3]
    assert refused.json()["error"] == "throttled"
    assert refused.headers["Retry-After"] == "30"  # the rest of the minute
    assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["L-1", "L-2", "L-3"]
    # Another token has its own count.
    assert other_bot_client.post(URL, trade(9), format="json").status_code == 200


@pytest.mark.usefixtures("fresh_counters")
@override_settings(API_THROTTLE_RATE="3/min")
def test_the_counter_is_an_expiring_key_in_redis(bot: Bot, bot_client: APIClient) -> None:
    for n in range(1, 5):
        bot_client.post(URL, trade(n), format="json")

    token = ApiToken.objects.get(bot=bot)
    key = f"throttle:token:{token.pk}:{WINDOW}"
    assert cache.get(key) == 4
    backend: Any = caches["default"]
    redis = backend._cache.get_client()
    ttl = redis.ttl(backend.make_and_validate_key(key))
    assert 0 < ttl <= 61


@pytest.mark.usefixtures("fresh_counters")
@override_settings(API_THROTTLE_RATE="1000/s")
def test_a_high_rate_lets_every_request_through(bot_client: APIClient) -> None:
    assert {bot_client.post(URL, trade(n), format="json").status_code for n in range(5)} == {200}


# --- the body size ---------------------------------------------------------------------------


@override_settings(API_MAX_BODY_BYTES=1000)
def test_a_body_over_the_limit_gets_413_and_writes_nothing(bot_client: APIClient) -> None:
    body = [trade(n) for n in range(10)]  # about 1,800 bytes

    response = bot_client.post(URL, body, format="json")

    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "detail": f"The body is {len(response.wsgi_request.body)} bytes; "
        "the most this API reads is 1000.",
    }
    assert Trade.objects.count() == 0


def test_a_body_at_the_limit_is_read(bot_client: APIClient) -> None:
    body = bytes(f'{{"trade_id": "L-1"{" " * 1000}}}', "ascii")

    with override_settings(API_MAX_BODY_BYTES=len(body)):
        response = post_raw(bot_client, body)

    assert response.status_code == 400  # read and validated: the other fields are missing
    assert {"field": "symbol", "reason": "is required"} in response.json()["errors"]


# --- bodies the API cannot read --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"trade_id": "L-1",',
        "{'trade_id': 'L-1'}",
        b'{"trade_id": "\xff\xfe"}',
    ],
    ids=["truncated", "single-quotes", "not-utf8"],
)
def test_malformed_json_gets_400_with_the_reason(bot_client: APIClient, body: str | bytes) -> None:
    response = post_raw(bot_client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert response.json()["detail"].startswith("The body is not valid JSON: ")
    assert Trade.objects.count() == 0


def test_an_empty_body_is_an_empty_object(bot_client: APIClient) -> None:
    response = post_raw(bot_client, b"")

    assert response.status_code == 400
    assert {"field": "trade_id", "reason": "is required"} in response.json()["errors"]
    assert Trade.objects.count() == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_get_400(bot_client: APIClient, constant: str) -> None:
    body = (
        '{"trade_id": "L-1", "symbol": "BTC/USDT", "exchange": "binance", "side": "long",'
        f' "quantity": {constant}, "entry_price": "60000", "entry_time": "2026-01-05T12:00:00Z"}}'
    )

    response = post_raw(bot_client, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error",
        "detail": f"The body is not valid JSON: {constant} is not a number JSON allows",
    }
    assert Trade.objects.count() == 0


@pytest.mark.parametrize("body", ['"a trade"', "42", "1.5", "true", "null"])
def test_a_body_that_is_not_an_object_or_array_gets_400(bot_client: APIClient, body: str) -> None:
    response = post_raw(bot_client, body)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body", "reason": "must be a JSON object or an array of them"}
    ]
    assert Trade.objects.count() == 0


def test_json_nested_thousands_deep_gets_400(bot_client: APIClient) -> None:
    response = post_raw(bot_client, "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error",
        "detail": "The body's JSON nests too deeply.",
    }


def test_a_number_beyond_any_column_gets_400(bot_client: APIClient) -> None:
    body = trade(1) | {"quantity": "1e999999999"}

    response = bot_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "quantity", "reason": "must have at most 18 digits before the point"}
    ]
