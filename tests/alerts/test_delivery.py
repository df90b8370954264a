"""Delivery to a real HTTP receiver on 127.0.0.1 that fails, hangs and rate-limits on command.
Every test commits for real (transaction=True): the claim's now() is the transaction's."""

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertStatus, AttemptStatus, Channel, DeliveryAttempt
from alerts.services.delivery import alert_deliver_one, alerts_deliver, backoff
from audit.models import RiskEvent
from tests.alerts.conftest import make_channel, make_rule
from tests.alerts.receiver import Receiver
from tests.factories import make_bot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.ALERTS_BACKOFF_SECONDS = 0.05
    settings.ALERTS_BACKOFF_MAX_SECONDS = 0.2
    settings.ALERTS_HTTP_TIMEOUT = 2.0


def breaches(*bot_ids: str) -> list[RiskEvent]:
    return RiskEvent.objects.bulk_create(
        RiskEvent(
            ts=timezone.now(),
            bot_id=bot_id,
            event_type="daily_loss_limit",
            severity="warning",
            limit_value=Decimal("100"),
            actual_value=Decimal(150 + i),
            action_taken="alerted",
        )
        for i, bot_id in enumerate(bot_ids)
    )


def deliver_until(done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        if alerts_deliver(budget_seconds=1.0) == 0:
            time.sleep(0.02)


def all_delivered() -> bool:
    return not Alert.objects.filter(status=AlertStatus.PENDING).exists()


def test_a_failing_receiver_gets_each_alert_once_in_order_per_bot_after_it_recovers(
    receiver: Receiver,
) -> None:
    make_bot("a")
    make_bot("b")
    make_rule(make_channel("ops", receiver.url))
    events = breaches("a", "b", "a", "b", "a")
    receiver.mode = "fail"
    for _ in range(3):
        assert alert_deliver_one() is not None
        time.sleep(0.25)  # past the backoff
    assert receiver.statuses[500] == 3
    assert receiver.ids() == []

    receiver.mode = "ok"
    deliver_until(all_delivered)

    by_event = dict(Alert.objects.values_list("source_id", "id"))
    assert sorted(receiver.ids()) == sorted(by_event[e.id] for e in events)  # each exactly once
    for bot in ("a", "b"):
        sent = [a["id"] for a in receiver.arrivals if a["bot_id"] == bot]
        assert sent == sorted(sent)  # in order per bot
    assert receiver.bad_signatures == 0
    failed = DeliveryAttempt.objects.filter(status=AttemptStatus.FAILED)
    assert list(failed.values_list("response_code", flat=True)) == [500, 500, 500]
    assert DeliveryAttempt.objects.filter(status=AttemptStatus.DELIVERED).count() == 5
    assert Channel.objects.get().consecutive_failures == 0


def test_a_hanging_receiver_times_out_and_the_retry_repeats_the_id(
    receiver: Receiver, settings: Any
) -> None:
    settings.ALERTS_HTTP_TIMEOUT = 0.5
    make_bot("a")
    make_rule(make_channel("ops", receiver.url))
    breaches("a")
    receiver.mode, receiver.hang_seconds = "hang", 1.5

    done = alert_deliver_one()
    assert done is not None
    assert done.outcome.status == AttemptStatus.TIMEOUT
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.status, attempt.response_code) == ("timeout", None)
    assert attempt.latency_ms >= 500

    receiver.mode = "ok"
    time.sleep(0.25)
    deliver_until(all_delivered)
    alert = Alert.objects.get()
    assert receiver.ids() == [alert.id, alert.id]  # it got the first try too: at least once
    assert receiver.unique() == [alert.id]  # deduplicated by id: exactly once
    assert alert.attempts == 2


def test_http_429_honours_retry_after_and_pauses_the_channel(receiver: Receiver) -> None:
    make_bot("a")
    make_rule(make_channel("ops", receiver.url))
    breaches("a", "a")
    receiver.rate_per_second, receiver.retry_after = 1, "2"

    first = alert_deliver_one()
    second = alert_deliver_one()
    assert first is not None and first.outcome.status == AttemptStatus.DELIVERED
    assert second is not None and second.outcome.status == AttemptStatus.RATE_LIMITED
    assert second.outcome.retry_after == 2.0
    channel = Channel.objects.get()
    limited = Alert.objects.get(pk=second.alert_id)
    assert channel.paused_until == limited.due_at
    assert 1.9 <= (limited.due_at - timezone.now()).total_seconds() <= 2.0
    assert channel.consecutive_failures == 0  # rate limiting is no failure
    assert alert_deliver_one() is None  # the channel waits
    deliver_until(all_delivered)
    assert receiver.statuses == {200: 2, 429: 1}
    attempt = DeliveryAttempt.objects.get(status=AttemptStatus.RATE_LIMITED)
    assert attempt.response_code == 429


def test_a_channel_that_keeps_failing_is_reported_through_the_others(
    receiver: Receiver, settings: Any
) -> None:
    settings.ALERTS_FAILING_AFTER = 3
    make_bot("a")
    broken = make_channel("broken", "http://127.0.0.1:9/nothing-listens")
    make_channel("ops", receiver.url)
    make_rule(broken)
    breaches("a")

    for _ in range(3):
        done = alert_deliver_one()
        assert done is not None and done.outcome.status == AttemptStatus.FAILED
        time.sleep(0.25)
    broken.refresh_from_db()
    assert (broken.failing, broken.consecutive_failures) == (True, 3)
    deliver_until(lambda: len(receiver.ids()) == 1)
    (report,) = receiver.arrivals
    assert report["kind"] == "channel_failing"
    assert report["message"].startswith("ERROR: alert channel broken (webhook) is failing: 3 ")
    # A fourth failure does not report it again.
    time.sleep(0.25)
    alert_deliver_one()
    assert Alert.objects.filter(kind="channel_failing").count() == 1


def test_backoff_doubles_up_to_its_cap_and_retry_after_wins(settings: Any) -> None:
    settings.ALERTS_BACKOFF_SECONDS = 2.0
    settings.ALERTS_BACKOFF_MAX_SECONDS = 600.0
    assert [backoff(n, None) for n in (1, 2, 3, 4, 10)] == [2.0, 4.0, 8.0, 16.0, 600.0]
    assert backoff(5, 7.0) == 7.0
    assert backoff(1, 99999.0) == 3600.0
