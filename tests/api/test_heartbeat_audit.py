"""A status a bot reports through its heartbeat is a change like any other: it is recorded."""

import pytest
from rest_framework.test import APIClient

from audit.models import ChangeLog
from trading.models import Bot

pytestmark = pytest.mark.django_db


def test_a_bot_reporting_an_error_writes_one_change_record(bot: Bot, bot_client: APIClient) -> None:
    response = bot_client.post("/api/v1/heartbeat/", {"status": "error"}, format="json")
    assert response.status_code == 200
    bot.refresh_from_db()
    assert bot.status == "error"
    record = ChangeLog.objects.get(entity_type="trading.bot", entity_id="momentum_001")
    assert (record.action, record.actor_bot_id, record.user_id) == ("update", "momentum_001", None)
    assert (record.old_values, record.new_values) == ({"status": "active"}, {"status": "error"})


def test_a_heartbeat_without_a_status_change_records_nothing(bot_client: APIClient) -> None:
    bot_client.post("/api/v1/heartbeat/", {"equity_usd": "10500.5"}, format="json")
    assert ChangeLog.objects.count() == 0
