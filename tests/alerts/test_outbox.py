"""The outbox rows the triggers write, in the transaction of the event they report."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from alerts.models import Alert, AlertKind, AlertStatus
from analytics.services.risk import heartbeat_stale_check
from audit.models import RiskEvent, Severity, SystemEvent
from audit.services import risk_event_resolve, system_event_record
from botconfig.services import bot_pause
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def risk_event(bot_id: str, severity: str = "warning", **fields: object) -> RiskEvent:
    return RiskEvent.objects.create(
        ts=timezone.now(),
        bot_id=bot_id,
        event_type="drawdown_limit",
        severity=severity,
        limit_value=Decimal("0.2"),
        actual_value=Decimal("0.25"),
        action_taken="alerted",
        **fields,
    )


def test_a_breach_writes_one_alert_per_matching_channel() -> None:
    make_bot("b1")
    make_bot("b2")
    ops = make_channel("ops", "http://127.0.0.1:9/")
    desk = make_channel("desk", "http://127.0.0.1:9/")
    make_rule(ops, min_severity="warning")
    make_rule(ops, min_severity="info")  # a second rule to the same channel: still one alert
    make_rule(desk, min_severity="critical")  # too high for a warning
    make_rule(desk, bot_id="b2")  # another bot

    event = risk_event("b1")

    alerts = list(Alert.objects.values_list("kind", "source", "source_id", "channel__name"))
    assert alerts == [("event", "risk_event", event.id, "ops")]
    alert = Alert.objects.get()
    assert alert.bot_id == "b1"
    assert alert.event_type == "risk_limit"
    assert alert.severity == "warning"
    assert alert.status == AlertStatus.PENDING
    assert alert.message == "WARNING: drawdown_limit on bot b1 (actual 0.25, limit 0.2; alerted)"
    assert alert.payload["risk_event_id"] == event.id
    assert alert.payload["actual_value"] == "0.25"
    assert alert.due_at == alert.created_at


def test_an_event_rolled_back_leaves_no_alert() -> None:
    make_bot("b1")
    make_rule(make_channel("ops", "http://127.0.0.1:9/"))
    with pytest.raises(RuntimeError), transaction.atomic():
        risk_event("b1")
        assert Alert.objects.count() == 1
        raise RuntimeError("the writer failed after the event")
    assert Alert.objects.count() == 0


def test_the_resolution_message_follows_the_event_to_its_channel(superuser: object) -> None:
    make_bot("b1")
    ops = make_channel("ops", "http://127.0.0.1:9/")
    quiet = make_channel("quiet", "http://127.0.0.1:9/")
    make_rule(ops, resolution_message="All clear on b1")
    make_rule(quiet, send_resolution=False)
    event = risk_event("b1")

    risk_event_resolve(event=event, user=superuser, note="limit raised")  # type: ignore[arg-type]

    rows = list(
        Alert.objects.order_by("id").values_list("kind", "channel__name", "message", "source_id")
    )
    assert rows == [
        ("event", "ops", rows[0][2], event.id),
        ("event", "quiet", rows[1][2], event.id),
        ("resolution", "ops", "All clear on b1 (limit raised)", event.id),
    ]


def test_system_events_and_pauses_are_routed_by_their_type() -> None:
    bot = make_bot("b1")
    ops = make_channel("ops", "http://127.0.0.1:9/")
    for kind in ("backup_failed", "drill_failed", "data_quality", "bot_paused"):
        make_rule(ops, event_type=kind, min_severity="info")

    failed = system_event_record(
        component="backups",
        event_type="backup_failed",
        message="pg_dump exit 1",
        severity=Severity.ERROR,
    )
    system_event_record(component="backups", event_type="backup_created", message="ok")
    system_event_record(component="data_quality", event_type="data_quality_run", message="run")
    finding = system_event_record(
        component="data_quality",
        event_type="candle_gap",
        message="gap",
        bot=bot,
        severity=Severity.WARNING,
    )
    drill = system_event_record(
        component="backups",
        event_type="backup_drill_failed",
        message="restore failed",
        severity=Severity.ERROR,
    )
    bot_pause(bot=bot, user=None, note="by hand")

    rows = list(
        Alert.objects.order_by("id").values_list("event_type", "source", "bot_id", "message")
    )
    assert rows[:3] == [
        ("backup_failed", "system_event", None, "ERROR: pg_dump exit 1"),
        ("data_quality", "system_event", "b1", "WARNING: gap"),
        ("drill_failed", "system_event", None, "ERROR: restore failed"),
    ]
    assert rows[3] == ("bot_paused", "change_log", "b1", "WARNING: bot b1 paused: by hand")
    assert len(rows) == 4
    assert [a.source_id for a in Alert.objects.filter(source="system_event").order_by("id")] == [
        failed.id,
        finding.id,
        drill.id,
    ]


def quiet_rule_now(severity: str) -> tuple[Alert, datetime]:
    make_bot("b1")
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).time().replace(microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    make_rule(make_channel("ops", "http://127.0.0.1:9/"), quiet_start=start, quiet_end=end)
    risk_event("b1", severity=severity)
    alert = Alert.objects.get()
    ends = datetime.combine(now.date(), end, tzinfo=UTC)
    if ends < now:  # the window spans midnight
        ends += timedelta(days=1)
    return alert, ends


def test_quiet_hours_hold_an_alert_until_they_end() -> None:
    alert, ends = quiet_rule_now("warning")
    assert alert.due_at == ends


def test_a_critical_alert_ignores_quiet_hours() -> None:
    alert, _ends = quiet_rule_now("critical")
    assert alert.due_at == alert.created_at


def test_quiet_hours_across_midnight() -> None:
    params: list[Any] = [
        datetime(2026, 1, 5, 23, 30, tzinfo=UTC),
        time(22),
        time(6),
        datetime(2026, 1, 6, 2, 0, tzinfo=UTC),
        time(22),
        time(6),
        datetime(2026, 1, 6, 12, 0, tzinfo=UTC),
        time(22),
        time(6),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT alerts.after_quiet(%s, %s, %s, 'warning'), "
            "alerts.after_quiet(%s, %s, %s, 'warning'), alerts.after_quiet(%s, %s, %s, 'warning')",
            params,
        )
        assert cursor.fetchone() == (
            datetime(2026, 1, 6, 6, 0, tzinfo=UTC),
            datetime(2026, 1, 6, 6, 0, tzinfo=UTC),
            datetime(2026, 1, 6, 12, 0, tzinfo=UTC),
        )


def test_the_stale_heartbeat_check_writes_its_alert_with_its_event() -> None:
    old = timezone.now() - timedelta(hours=2)
    make_bot("quiet_bot", last_heartbeat_at=old, created_at=old)
    make_rule(make_channel("ops", "http://127.0.0.1:9/"), event_type="stale_heartbeat")

    (event,) = heartbeat_stale_check()

    alert = Alert.objects.get()
    assert (alert.kind, alert.source_id, alert.bot_id, alert.event_type) == (
        AlertKind.EVENT,
        event.id,
        "quiet_bot",
        "stale_heartbeat",
    )
    # A second check finds the episode open and writes nothing more.
    assert heartbeat_stale_check() == []
    assert Alert.objects.count() == 1
    assert SystemEvent.objects.count() == 0
