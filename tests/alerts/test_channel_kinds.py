"""Slack, Discord and Telegram bodies to a local stand-in, e-mail to a local SMTP sink: each
carries the alert's id."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert, AttemptStatus, Channel, DeliveryAttempt
from alerts.services.delivery import alerts_deliver
from audit.models import RiskEvent
from tests.alerts.conftest import make_rule
from tests.alerts.receiver import Receiver
from tests.alerts.smtp_sink import SmtpSink
from tests.factories import make_bot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stand_in() -> Iterator[Receiver]:
    started = Receiver(None)
    try:
        yield started
    finally:
        started.close()


def breach() -> RiskEvent:
    return RiskEvent.objects.create(
        ts=timezone.now(), bot_id="b1", event_type="daily_loss_limit", severity="warning",
        action_taken="alerted",
    )  # fmt: skip


def test_slack_discord_and_telegram_bodies(stand_in: Receiver, settings: Any) -> None:
    settings.ALERTS_TELEGRAM_API_URL = stand_in.url.removesuffix("/hook")
    make_bot("b1")
    base = stand_in.url
    channels = [
        Channel.objects.create(name="slack", kind="slack", url=f"{base}/slack"),
        Channel.objects.create(name="discord", kind="discord", url=f"{base}/discord"),
        Channel.objects.create(name="tg", kind="telegram", secret="123:abc", chat_id="-100"),
    ]
    for channel in channels:
        make_rule(channel)
    breach()

    assert alerts_deliver(budget_seconds=10) == 3

    ids = dict(Alert.objects.values_list("channel__name", "id"))
    text = "WARNING: daily_loss_limit on bot b1 (actual -, limit -; alerted)"
    assert sorted(stand_in.plain) == sorted(
        [
            ("/hook/slack", {"text": f"{text} [alert {ids['slack']}]"}),
            ("/hook/discord", {"content": f"{text} [alert {ids['discord']}]"}),
            ("/bot123:abc/sendMessage", {"chat_id": "-100", "text": f"{text} [alert {ids['tg']}]"}),
        ]
    )


def test_email_reaches_the_smtp_sink_with_the_alert_id(smtp: SmtpSink) -> None:
    make_bot("b1")
    channel = Channel.objects.create(
        name="mail", kind="email", recipients="ops@atb.example, cto@atb.example"
    )
    make_rule(channel)
    breach()

    assert alerts_deliver(budget_seconds=10) == 1

    alert = Alert.objects.get()
    (message,) = smtp.messages
    assert message.recipients == ["ops@atb.example", "cto@atb.example"]
    assert message.sender == "<alerts@atb.example>"
    assert f"X-Alert-Id: {alert.id}" in message.data
    assert "Subject: [warning] risk_limit b1" in message.data
    assert f"[alert {alert.id}]" in message.data
    assert DeliveryAttempt.objects.get().status == AttemptStatus.DELIVERED


def test_email_to_a_closed_port_is_a_recorded_failure(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    make_bot("b1")
    make_rule(Channel.objects.create(name="mail", kind="email", recipients="ops@atb.example"))
    breach()

    assert alerts_deliver(budget_seconds=0.5) == 0

    attempt = DeliveryAttempt.objects.get()
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.error.startswith("ConnectionRefusedError")
    alert = Alert.objects.get()
    assert (alert.status, alert.attempts, alert.last_error) == ("pending", 1, attempt.error)
