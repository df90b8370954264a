"""Delivering the outbox. Each alert is claimed with SELECT ... FOR UPDATE SKIP LOCKED, sent, and
its attempt and outcome committed in the claim's transaction, so any number of workers (and beat
sweeps) share the work and none sends what another holds. A worker killed mid-send leaves no
trace but the message the receiver may have got: its transaction rolls back, the alert is still
pending and is sent again with the same id (at least once; the id makes it exactly once for the
receiver).

The outer ``status = 'pending'`` is what makes the claim safe: when the row a claim waited for
was delivered meanwhile, PostgreSQL re-checks the outer conditions on its new version (not the
subquery's) and leaves it out. Without it, two workers sent the same alert (the burst test).

Order per bot: only the head (lowest id) of each (channel, bot) queue of pending alerts can be
claimed, so a later alert of a bot never overtakes an earlier one being retried or being sent by
another worker (SKIP LOCKED skips the head, and what follows it is no head).

Failures back off exponentially (ALERTS_BACKOFF_SECONDS doubled per attempt, at most
ALERTS_BACKOFF_MAX_SECONDS), or as long as the receiver's Retry-After says; an HTTP 429 also
pauses the whole channel that long. ALERTS_FAILING_AFTER failures in a row mark the channel
failing, which the other channels are told (an alert of kind channel_failing)."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import (
    Alert,
    AlertKind,
    AlertStatus,
    AttemptStatus,
    Channel,
    DeliveryAttempt,
    Source,
)
from alerts.services.senders import Outcome, send
from audit.models import Severity

CLAIM_SQL = """
SELECT a.id FROM alerts.alerts a
WHERE a.id IN (
        SELECT DISTINCT ON (channel_id, coalesce(bot_id, '')) id FROM alerts.alerts
        WHERE status = 'pending'
        ORDER BY channel_id, coalesce(bot_id, ''), id)
  AND a.status = 'pending'
  AND a.due_at <= now()
  AND a.channel_id IN (
        SELECT id FROM alerts.channels
        WHERE is_active AND (paused_until IS NULL OR paused_until <= now()))
ORDER BY a.due_at, a.id
LIMIT 1
FOR UPDATE OF a SKIP LOCKED
"""


@dataclass(frozen=True)
class Delivered:
    alert_id: int
    outcome: Outcome


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds until the next try after ``attempts`` failed ones."""
    if retry_after is not None:  # the receiver knows best (at most an hour)
        return min(retry_after, 3600.0)
    exponential = settings.ALERTS_BACKOFF_SECONDS * 2 ** max(0, attempts - 1)
    return float(min(exponential, settings.ALERTS_BACKOFF_MAX_SECONDS))


def alert_deliver_one() -> Delivered | None:
    """Claim the next due alert, send it, record the attempt. None when nothing is due."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL)
            row = cursor.fetchone()
        if row is None:
            return None
        alert = Alert.objects.select_related("channel").get(pk=row[0])
        channel = alert.channel
        started = timezone.now()
        clock = time.monotonic()
        outcome = send(alert, channel)
        latency_ms = int((time.monotonic() - clock) * 1000)
        attempt = DeliveryAttempt.objects.create(
            alert=alert,
            channel=channel,
            started_at=started,
            status=outcome.status,
            response_code=outcome.response_code,
            latency_ms=latency_ms,
            error=outcome.error[:2000],
        )
        now = timezone.now()
        alert.attempts += 1
        if outcome.status == AttemptStatus.DELIVERED:
            alert.status = AlertStatus.DELIVERED
            alert.delivered_at = now
            alert.last_error = ""
            Channel.objects.filter(pk=channel.pk).update(
                consecutive_failures=0, failing=False, failing_since=None
            )
        else:
            wait = backoff(alert.attempts, outcome.retry_after)
            alert.due_at = now + timedelta(seconds=wait)
            alert.last_error = outcome.error[:2000]
            if outcome.status == AttemptStatus.RATE_LIMITED:
                # Rate limiting is the receiver working as it should: no failure, but the whole
                # channel waits.
                Channel.objects.filter(pk=channel.pk).update(paused_until=alert.due_at)
            else:
                _failure(channel=channel, attempt=attempt, now=now)
        alert.save(update_fields=["attempts", "status", "delivered_at", "due_at", "last_error"])
        return Delivered(alert.id, outcome)


def _failure(*, channel: Channel, attempt: DeliveryAttempt, now: datetime) -> None:
    """Count a failure; the one that reaches ALERTS_FAILING_AFTER marks the channel failing and
    tells every other working channel."""
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    channel.refresh_from_db(fields=["consecutive_failures", "failing"])
    if channel.failing or channel.consecutive_failures < settings.ALERTS_FAILING_AFTER:
        return
    Channel.objects.filter(pk=channel.pk).update(failing=True, failing_since=now)
    others = Channel.objects.filter(is_active=True, failing=False).exclude(pk=channel.pk)
    message = (
        f"ERROR: alert channel {channel.name} ({channel.kind}) is failing: "
        f"{channel.consecutive_failures} failures in a row, last: {attempt.error}"
    )
    Alert.objects.bulk_create(
        [
            Alert(
                created_at=now,
                kind=AlertKind.CHANNEL_FAILING,
                source=Source.DELIVERY_ATTEMPT,
                source_id=attempt.id,
                channel=other,
                event_type="channel_failing",
                severity=Severity.ERROR,
                message=message,
                payload={"channel": channel.name, "attempt_id": attempt.id},
                due_at=now,
                first_due_at=now,
            )
            for other in others
        ],
        ignore_conflicts=True,
    )


# Seconds until the next head of a queue is due on its channel (a backoff or a rate limit
# ending); zero or less when one is due but claimed by another worker.
NEXT_DUE_SQL = """
SELECT extract(epoch FROM min(greatest(a.due_at, coalesce(c.paused_until, a.due_at)))
                          - clock_timestamp())
FROM alerts.alerts a JOIN alerts.channels c ON c.id = a.channel_id AND c.is_active
WHERE a.id IN (
        SELECT DISTINCT ON (channel_id, coalesce(bot_id, '')) id FROM alerts.alerts
        WHERE status = 'pending'
        ORDER BY channel_id, coalesce(bot_id, ''), id)
"""


def next_due_in() -> float | None:
    with connection.cursor() as cursor:
        cursor.execute(NEXT_DUE_SQL)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


def alerts_deliver(*, budget_seconds: float = 20.0) -> int:
    """Deliver due alerts until none is due within the budget, or the budget is spent; returns
    how many were delivered. An alert due within the budget (a short backoff, a rate limit of a
    second) is waited for rather than left to the next sweep."""
    deadline = time.monotonic() + budget_seconds
    delivered = 0
    while time.monotonic() < deadline:
        done = alert_deliver_one()
        if done is not None:
            delivered += done.outcome.status == AttemptStatus.DELIVERED
            continue
        wait = next_due_in()
        # Nothing pending, only what other workers hold, or nothing due within the budget.
        if wait is None or wait <= 0 or time.monotonic() + wait >= deadline:
            break
        time.sleep(min(wait, 1.0))
    return delivered


def alert_test_create(*, channel: Channel) -> Alert:
    """A test message to ``channel``, delivered like any alert."""
    now = timezone.now()
    with transaction.atomic():
        alert = Alert(
            created_at=now,
            kind=AlertKind.TEST,
            source=Source.CHANNEL,
            source_id=0,
            channel=channel,
            event_type="test",
            severity=Severity.INFO,
            message=f"Test message to alert channel {channel.name}",
            due_at=now,
            first_due_at=now,
        )
        alert.save()
        # One test alert per click: the source id is the alert's own id.
        Alert.objects.filter(pk=alert.pk).update(source_id=alert.pk)
        alert.source_id = alert.pk
    return alert
