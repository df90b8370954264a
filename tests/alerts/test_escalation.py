"""Escalation of unacknowledged critical events; acknowledging from the API (audited); the outbox
in /health/ready, /metrics and /api/v1/database/metrics."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert, Channel
from alerts.services.escalation import escalations_create, event_acknowledge
from audit.models import ChangeLog, RiskEvent
from audit.monitoring.probes import readiness
from audit.monitoring.prometheus import PREFIX, metrics_text
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def critical(bot_id: str = "b1", severity: str = "critical") -> RiskEvent:
    return RiskEvent.objects.create(
        ts=timezone.now(),
        bot_id=bot_id,
        event_type="drawdown_limit",
        severity=severity,
        action_taken="bot_paused",
    )


@pytest.fixture
def pager() -> Channel:
    make_bot("b1")
    ops = make_channel("ops", "http://127.0.0.1:9/")
    pager = make_channel("pager", "http://127.0.0.1:9/")
    make_rule(ops, escalate_after_minutes=10, escalation_channel=pager)
    return pager


def age(minutes: int) -> None:
    Alert.objects.update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_a_critical_event_not_acknowledged_in_time_goes_to_the_escalation_channel(
    pager: Channel,
) -> None:
    event = critical()
    age(9)
    assert escalations_create() == 0
    age(11)

    assert escalations_create() == 1
    assert escalations_create() == 0  # once, however many sweeps

    escalation = Alert.objects.get(kind="escalation")
    assert (escalation.channel_id, escalation.source_id, escalation.bot_id) == (
        pager.id,
        event.id,
        "b1",
    )
    assert escalation.message.startswith("ESCALATED, not acknowledged in 10 min: CRITICAL: ")


def test_acknowledged_resolved_or_not_critical_events_do_not_escalate(
    pager: Channel, superuser: User
) -> None:
    acknowledged = critical()
    resolved = critical()
    critical(severity="warning")
    event_acknowledge(source="risk_event", source_id=acknowledged.id, user=superuser, note="mine")
    RiskEvent.objects.filter(pk=resolved.pk).update(resolved=True, resolved_at=timezone.now())
    age(30)

    assert escalations_create() == 0
    assert not Alert.objects.filter(kind="escalation").exists()


@pytest.fixture
def staff_api() -> tuple[APIClient, User]:
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def post(client: APIClient, body: dict[str, Any]) -> Any:
    """A session POST with CSRF enforced: the cookie and the header carry the same token."""
    token = "t" * 32
    client.cookies["csrftoken"] = token
    return client.post(
        "/api/v1/alerts/acknowledgements", body, format="json", HTTP_X_CSRFTOKEN=token
    )


def test_acknowledging_through_the_api_is_audited_and_refusals_name_their_field(
    pager: Channel, staff_api: tuple[APIClient, User]
) -> None:
    client, user = staff_api
    event = critical()

    response = post(client, {"source": "risk_event", "id": event.id, "note": "looking"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["id"], body["user"], body["note"]) == (
        "risk_event",
        event.id,
        "analyst",
        "looking",
    )
    record = ChangeLog.objects.get(entity_type="alerts.acknowledgement")
    assert (record.user_id, record.note) == (user.id, "looking")

    again = post(client, {"id": event.id})
    assert again.status_code == 400
    assert again.json()["errors"][0]["field"] == "id"
    assert "already acknowledged" in again.json()["errors"][0]["reason"]
    missing = post(client, {"id": 999999})
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (400, "id")
    bad = post(client, {"source": "trade", "id": event.id})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "source")
    assert ChangeLog.objects.filter(entity_type="alerts.acknowledgement").count() == 1

    listed = client.get(f"/api/v1/alerts/acknowledgements?source=risk_event&ids={event.id},5")
    assert [(a["id"], a["user"]) for a in listed.json()] == [(event.id, "analyst")]
    age(60)
    assert escalations_create() == 0


def test_acknowledging_needs_staff(pager: Channel) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=False)
    client = APIClient()
    client.force_authenticate(user)
    event = critical()
    response = client.post("/api/v1/alerts/acknowledgements", {"id": event.id}, format="json")
    assert response.status_code == 403
    assert not ChangeLog.objects.filter(entity_type="alerts.acknowledgement").exists()


def test_an_old_outbox_is_a_readiness_warning_and_shows_in_the_metrics(pager: Channel) -> None:
    critical()
    now = timezone.now()
    Alert.objects.update(first_due_at=now - timedelta(seconds=299))
    status, body = readiness(now=now)
    assert body["checks"]["alerts_outbox"]["status"] == "ok"
    assert "alerts_outbox" not in body["warnings"]

    Alert.objects.update(first_due_at=now - timedelta(seconds=301))
    status, body = readiness(now=now)
    assert status == 200  # a warning, not an outage
    check = body["checks"]["alerts_outbox"]
    assert (check["status"], check["backlog"], check["oldest_age_seconds"]) == (
        "warning",
        1,
        301.0,
    )
    assert "alerts_outbox" in body["warnings"]

    text = metrics_text(now=now)
    assert f"{PREFIX}alerts_backlog 1\n" in text
    assert f"{PREFIX}alerts_oldest_undelivered_age_seconds 301.0\n" in text
    assert f'{PREFIX}alerts_channel_backlog{{channel="ops"}} 1\n' in text
    assert f'{PREFIX}alerts_channel_backlog{{channel="pager"}} 0\n' in text


def test_the_database_metrics_api_has_the_outbox_per_channel(pager: Channel) -> None:
    critical()
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    body = client.get("/api/v1/database/metrics").json()
    alerts = body["extensions"]["alerts"]
    assert alerts["backlog"] == 1
    assert [(c["name"], c["backlog"], c["failing"]) for c in alerts["channels"]] == [
        ("ops", 1, False),
        ("pager", 0, False),
    ]
