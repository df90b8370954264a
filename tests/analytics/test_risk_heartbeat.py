"""The stale-heartbeat check (analytics.services.risk.heartbeat_stale_check)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from analytics.services.risk import heartbeat_stale_check
from audit.models import RiskEvent
from tests.factories import make_bot
from trading.models import Bot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=30)


def bot_with_heartbeat(bot_id: str, age_s: int | None, **fields: Any) -> Bot:
    bot = make_bot(bot_id, **fields)
    last = None if age_s is None else NOW - timedelta(seconds=age_s)
    Bot.objects.filter(pk=bot.pk).update(last_heartbeat_at=last, created_at=LONG_AGO)
    bot.refresh_from_db()
    return bot


def test_an_active_bot_quiet_for_more_than_the_limit_gets_one_event() -> None:
    bot_with_heartbeat("quiet_001", 301)
    bot_with_heartbeat("at_limit_001", 300)
    bot_with_heartbeat("fresh_001", 5)
    bot_with_heartbeat("paused_001", 3600, status="paused")
    bot_with_heartbeat("stopped_001", 3600, status="stopped")

    [event] = heartbeat_stale_check(now=NOW)

    assert (
        event.bot_id,
        event.event_type,
        event.limit_value,
        event.actual_value,
        event.action_taken,
        event.severity,
    ) == ("quiet_001", "stale_heartbeat", Decimal(300), Decimal(301), "alerted", "warning")
    assert event.details == {
        "unit": "seconds",
        "last_heartbeat_at": "2026-01-10T14:54:59Z",
        "created_at": "2025-12-11T15:00:00Z",
        "checked_at": "2026-01-10T15:00:00Z",
    }


def test_a_bot_that_never_sent_a_heartbeat_counts_from_its_creation() -> None:
    bot_with_heartbeat("silent_001", None)
    newborn = make_bot("newborn_001")
    Bot.objects.filter(pk=newborn.pk).update(created_at=NOW - timedelta(seconds=60))

    [event] = heartbeat_stale_check(now=NOW)

    assert (event.bot_id, event.actual_value) == ("silent_001", Decimal(30 * 86400))
    assert event.details["last_heartbeat_at"] is None


def test_one_event_per_episode() -> None:
    bot = bot_with_heartbeat("quiet_001", 600)
    [first] = heartbeat_stale_check(now=NOW)

    assert heartbeat_stale_check(now=NOW + timedelta(minutes=1)) == []
    assert RiskEvent.objects.count() == 1

    # A heartbeat ends the episode ...
    Bot.objects.filter(pk=bot.pk).update(last_heartbeat_at=NOW + timedelta(minutes=2))
    assert heartbeat_stale_check(now=NOW + timedelta(minutes=3)) == []
    first.refresh_from_db()
    assert first.resolved and first.resolved_at == NOW + timedelta(minutes=3)
    assert first.resolution_note == "Cleared: heartbeat received at 2026-01-10T15:02:00+00:00."

    # ... and silence after it is a new one.
    [second] = heartbeat_stale_check(now=NOW + timedelta(minutes=8))
    assert second.pk != first.pk
    assert second.actual_value == Decimal(360)
    assert RiskEvent.objects.filter(resolved=False).count() == 1


@override_settings(BOT_HEARTBEAT_STALE_SECONDS=60)
def test_the_limit_comes_from_the_settings() -> None:
    bot_with_heartbeat("quiet_001", 61)

    [event] = heartbeat_stale_check(now=NOW)

    assert (event.limit_value, event.actual_value) == (Decimal(60), Decimal(61))
