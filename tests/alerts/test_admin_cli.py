"""`manage.py alerts` and the admin pages: as non-superuser staff with CSRF enforced."""

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.models import Acknowledgement, Alert, AlertStatus, Channel, DeliveryAttempt, Rule
from audit.models import ChangeLog, RiskEvent
from tests.alerts.conftest import SECRET, make_channel, make_rule
from tests.alerts.receiver import Receiver
from tests.factories import make_bot


def alerts(*args: str) -> str:
    out = StringIO()
    call_command("alerts", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_cli_adds_a_channel_and_a_rule_tests_and_lists(receiver: Receiver) -> None:
    make_bot("b1")
    out = alerts(
        "channel",
        "add",
        "--kind",
        "webhook",
        "--name",
        "ops",
        "--url",
        receiver.url,
        "--secret",
        SECRET,
    )
    channel = Channel.objects.get()
    assert out == f"channel ops (webhook) added, id {channel.id}\n"
    out = alerts(
        "rule", "add", "--channel", "ops", "--event", "risk_limit", "--severity", "warning"
    )
    rule = Rule.objects.get()
    assert out == f"rule {rule.id} added: risk_limit >= warning, all bots -> ops\n"
    assert (rule.bot_id, rule.channel_id) == (None, channel.id)

    out = alerts("channel", "test", "ops")
    test_alert = Alert.objects.get(kind="test")
    assert re.fullmatch(
        rf"test message \(alert {test_alert.id}\) delivered to ops: 200, \d+ ms\n", out
    )
    assert receiver.unique() == [test_alert.id]
    assert receiver.arrivals[0]["message"] == "Test message to alert channel ops"

    assert alerts("list") == (
        "channels:\n"
        "  ops              webhook   active   secret set backlog 0\n"
        "rules:\n"
        f"  {rule.id:<4} risk_limit       >= warning  all bots -> ops\n"
        "pending alerts: 0\n"
    )
    assert SECRET not in alerts("list")
    records = ChangeLog.objects.filter(entity_type__startswith="alerts.").order_by("id")
    assert list(records.values_list("entity_type", "note")) == [
        ("alerts.channel", "alerts channel add"),
        ("alerts.rule", "alerts rule add"),
    ]
    assert "secret" not in records[0].new_values


@pytest.mark.django_db
def test_the_cli_refuses_bad_input_naming_the_field_and_writes_nothing() -> None:
    with pytest.raises(CommandError, match=r"--secret: A webhook channel needs a secret"):
        alerts("channel", "add", "--kind", "webhook", "--name", "ops", "--url", "http://x.example")
    with pytest.raises(CommandError, match=r"--url: A slack channel needs an http\(s\) URL"):
        alerts("channel", "add", "--kind", "slack", "--name", "s", "--url", "ftp://x")
    with pytest.raises(CommandError, match=r"--channel: No channel named 'nope'"):
        alerts("rule", "add", "--channel", "nope", "--event", "risk_limit")
    make_channel("ops", "http://127.0.0.1:9/")
    with pytest.raises(CommandError, match=r"--bot: No bot 'ghost'"):
        alerts("rule", "add", "--channel", "ops", "--event", "risk_limit", "--bot", "ghost")
    with pytest.raises(CommandError, match=r"--name: A channel named 'ops' exists already"):
        alerts("channel", "add", "--kind", "discord", "--name", "ops", "--url", "http://x.example")
    assert Channel.objects.count() == 1
    assert Rule.objects.count() == 0


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, url: str, data: dict[str, object]) -> object:
    page = client.get(url)
    token = (
        page.cookies["csrftoken"].value
        if "csrftoken" in page.cookies
        else client.cookies["csrftoken"].value
    )
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


@pytest.mark.django_db
def test_the_secret_is_never_shown_again_and_an_empty_field_keeps_it() -> None:
    client = staff("add_channel", "change_channel", "view_channel")
    add = reverse("admin:alerts_channel_add")
    response = csrf_post(
        client,
        add,
        {
            "name": "ops",
            "kind": "webhook",
            "url": "http://hooks.example/x",
            "secret": "hunter2",
            "chat_id": "",
            "recipients": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    channel = Channel.objects.get()
    assert channel.secret == "hunter2"
    change = reverse("admin:alerts_channel_change", args=[channel.pk])
    page = client.get(change).content.decode()
    assert "hunter2" not in page
    assert 'name="secret"' in page
    response = csrf_post(
        client,
        change,
        {
            "name": "ops",
            "kind": "webhook",
            "url": "http://hooks.example/y",
            "secret": "",
            "chat_id": "",
            "recipients": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    channel.refresh_from_db()
    assert (channel.url, channel.secret) == ("http://hooks.example/y", "hunter2")
    assert "hunter2" not in client.get(reverse("admin:alerts_channel_changelist")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_test_message_action_queues_a_test_alert(receiver: Receiver) -> None:
    client = staff("change_channel", "view_channel")
    channel = make_channel("ops", receiver.url)
    url = reverse("admin:alerts_channel_changelist")
    response = csrf_post(
        client, url, {"action": "send_test_message", "_selected_action": [channel.pk]}
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    alert = Alert.objects.get()
    assert (alert.kind, alert.channel_id, alert.status) == ("test", channel.pk, AlertStatus.PENDING)


@pytest.mark.django_db
def test_acknowledging_from_the_admin_records_who_when_and_the_note() -> None:
    client = staff("view_alert", "add_acknowledgement")
    bot = make_bot("b1")
    make_rule(make_channel("ops", "http://127.0.0.1:9/"))
    event = RiskEvent.objects.create(
        ts=timezone.now(), bot=bot, event_type="drawdown_limit", severity="critical"
    )
    alert = Alert.objects.get()
    url = reverse("admin:alerts_alert_changelist")
    form = csrf_post(client, url, {"action": "acknowledge_events", "_selected_action": [alert.pk]})
    assert form.status_code == 200  # type: ignore[attr-defined]
    assert Acknowledgement.objects.count() == 0
    done = csrf_post(
        client,
        url,
        {
            "action": "acknowledge_events",
            "_selected_action": [alert.pk],
            "apply": "1",
            "note": "on it",
        },
    )
    assert done.status_code == 302  # type: ignore[attr-defined]
    ack = Acknowledgement.objects.get()
    assert (ack.source, ack.source_id, ack.user.username, ack.note) == (
        "risk_event",
        event.id,
        "ops",
        "on it",
    )
    record = ChangeLog.objects.get(entity_type="alerts.acknowledgement")
    assert (record.user_id, record.note, record.new_values["source_id"]) == (
        ack.user_id,
        "on it",
        event.id,
    )
    # A second acknowledgement is a message, not a second row.
    csrf_post(
        client,
        url,
        {"action": "acknowledge_events", "_selected_action": [alert.pk], "apply": "1", "note": "x"},
    )
    assert Acknowledgement.objects.count() == 1


@pytest.mark.django_db
def test_attempts_are_read_only_for_staff() -> None:
    client = staff("view_deliveryattempt", "change_deliveryattempt", "delete_deliveryattempt")
    bot = make_bot("b1")
    channel = make_channel("ops", "http://127.0.0.1:9/")
    make_rule(channel)
    RiskEvent.objects.create(ts=timezone.now(), bot=bot, event_type="drawdown_limit")
    attempt = DeliveryAttempt.objects.create(
        alert=Alert.objects.get(),
        channel=channel,
        started_at=timezone.now(),
        status="failed",
        latency_ms=5,
    )
    change = reverse("admin:alerts_deliveryattempt_change", args=[attempt.pk])
    assert client.get(change).status_code == 200
    assert csrf_post(client, change, {"status": "delivered"}).status_code == 403  # type: ignore[attr-defined]
    attempt.refresh_from_db()
    assert attempt.status == "failed"
