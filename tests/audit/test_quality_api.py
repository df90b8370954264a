"""GET /api/v1/data-quality/: the latest run's findings, staff only."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.services import data_quality_check
from tests.api.conftest import client_with
from tests.factories import make_candle, make_signal
from trading.models import Bot
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/data-quality/"
NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)


def test_staff_read_the_latest_findings(
    staff_client: APIClient, bot: Bot, django_assert_num_queries: Any
) -> None:
    for m in (10, 5):
        make_candle(ts=NOW - timedelta(minutes=m))
    signal = make_signal(bot, executed=True, generated_at=NOW - timedelta(hours=1))
    gap, orphan = data_quality_check(now=NOW)
    data_quality_check(now=NOW + timedelta(minutes=5))

    with django_assert_num_queries(4):  # token, its last use, the run, its findings
        response = staff_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "checked_at": "2026-01-10T15:05:00Z",
        "findings": [
            {
                "id": gap.pk,
                "ts": "2026-01-10T15:00:00Z",
                "check": "candle_gap",
                "severity": "warning",
                "message": "BTC/USDT@binance 1m: 4 candle(s) missing between 2026-01-10 14:50 "
                "and 2026-01-10 14:55 UTC",
                "details": {
                    "check": "candle_gap",
                    "symbol": "BTC/USDT",
                    "exchange": "binance",
                    "timeframe": "1m",
                    "last_candle_before": "2026-01-10T14:50:00Z",
                    "first_candle_after": "2026-01-10T14:55:00Z",
                    "gap_start": "2026-01-10T14:51:00Z",
                    "gap_end": "2026-01-10T14:54:00Z",
                    "missing_candles": 4,
                },
            },
            {
                "id": orphan.pk,
                "ts": "2026-01-10T15:00:00Z",
                "check": "executed_signal_without_trade",
                "severity": "warning",
                "message": f"signal {signal.pk} of momentum_001 is marked executed but has no "
                "trade",
                "details": {
                    "check": "executed_signal_without_trade",
                    "signal_id": signal.pk,
                    "bot_id": "momentum_001",
                    "symbol": "BTC/USDT",
                    "signal_type": "breakout",
                    "generated_at": "2026-01-10T14:00:00Z",
                },
            },
        ],
    }


def test_before_any_run(staff_client: APIClient) -> None:
    response = staff_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {"checked_at": None, "findings": []}


def test_a_bots_token_is_refused_and_nobody_is_unauthenticated(bot: Bot) -> None:
    assert client_with(bot_token_create(bot=bot).key).get(URL).status_code == 403
    assert APIClient().get(URL).status_code == 401
