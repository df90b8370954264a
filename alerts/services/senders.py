"""How one alert is put on the wire, per channel kind. Every message carries the alert's id, so
a receiver can drop a repeat: delivery is at least once (a worker killed after the receiver got
the message but before the outbox row was marked sends it again), which the id makes exactly once
for a receiver that deduplicates by it.

Webhook signature (docs/DESIGN.md "Alerts"): headers ``X-Alert-Id``, ``X-Alert-Timestamp`` (Unix
seconds) and ``X-Signature: sha256=<hex>``, the HMAC-SHA256 with the channel's secret of
``<timestamp>.<body bytes>``. A receiver recomputes it over the raw body, compares in constant
time, and refuses timestamps more than a few minutes off its clock (replays)."""

import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from alerts.models import Alert, AttemptStatus, Channel, ChannelKind


@dataclass(frozen=True)
class Outcome:
    status: AttemptStatus
    response_code: int | None = None
    error: str = ""
    retry_after: float | None = None  # seconds, from the receiver's Retry-After


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def alert_document(alert: Alert) -> dict[str, Any]:
    """The webhook's JSON body."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "event_type": alert.event_type,
        "severity": alert.severity,
        "bot_id": alert.bot_id,
        "message": alert.message,
        "source": alert.source,
        "source_id": alert.source_id,
        "created_at": alert.created_at.isoformat(),
        "payload": alert.payload,
    }


def alert_text(alert: Alert) -> str:
    return f"{alert.message} [alert {alert.id}]"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    request = urllib.request.Request(  # noqa: S310 - staff-configured http(s) URL
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.ALERTS_HTTP_TIMEOUT
        ) as response:
            response.read()
            return Outcome(AttemptStatus.DELIVERED, response.status)
    except urllib.error.HTTPError as error:
        retry_after = retry_after_seconds(error.headers.get("Retry-After"))
        error.read()
        if error.code == 429:
            return Outcome(
                AttemptStatus.RATE_LIMITED, error.code, "HTTP 429 Too Many Requests", retry_after
            )
        return Outcome(AttemptStatus.FAILED, error.code, f"HTTP {error.code}", retry_after)
    except TimeoutError as error:
        return Outcome(AttemptStatus.TIMEOUT, None, f"timed out: {error}")
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError | socket.timeout):
            return Outcome(AttemptStatus.TIMEOUT, None, f"timed out: {error.reason}")
        return Outcome(AttemptStatus.FAILED, None, f"{type(error.reason).__name__}: {error.reason}")
    except OSError as error:
        return Outcome(AttemptStatus.FAILED, None, f"{type(error).__name__}: {error}")


def send(alert: Alert, channel: Channel) -> Outcome:
    if channel.kind == ChannelKind.WEBHOOK:
        body = json.dumps(alert_document(alert), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "X-Alert-Id": str(alert.id),
            "X-Alert-Timestamp": timestamp,
            "X-Signature": sign(channel.secret, timestamp, body),
        }
        return _post(channel.url, body, headers)
    if channel.kind == ChannelKind.SLACK:
        return _post(channel.url, json.dumps({"text": alert_text(alert)}).encode(), {})
    if channel.kind == ChannelKind.DISCORD:
        return _post(channel.url, json.dumps({"content": alert_text(alert)}).encode(), {})
    if channel.kind == ChannelKind.TELEGRAM:
        url = f"{settings.ALERTS_TELEGRAM_API_URL}/bot{channel.secret}/sendMessage"
        body = json.dumps({"chat_id": channel.chat_id, "text": alert_text(alert)}).encode()
        return _post(url, body, {})
    return _email(alert, channel)


def _email(alert: Alert, channel: Channel) -> Outcome:
    recipients = [r.strip() for r in channel.recipients.split(",") if r.strip()]
    message = EmailMessage(
        subject=f"[{alert.severity}] {alert.event_type} {alert.bot_id or ''}".strip(),
        body=alert_text(alert),
        to=recipients,
        headers={"X-Alert-Id": str(alert.id)},
    )
    try:
        message.send()
    except (OSError, ValueError) as error:
        return Outcome(AttemptStatus.FAILED, None, f"{type(error).__name__}: {error}")
    return Outcome(AttemptStatus.DELIVERED, None)
