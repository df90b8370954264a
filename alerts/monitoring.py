"""The outbox in the probes and metrics (registered in audit/monitoring/extensions.py from
AlertsConfig.ready): backlog, delivery latency, failures per channel, and a /health/ready warning
when the oldest undelivered alert is older than ALERTS_OUTBOX_MAX_AGE_SECONDS (5 minutes).

Ages and latencies count from an alert's first_due_at: an alert held by its rule's quiet hours is
not late before they end."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from audit.monitoring.extensions import Family, Sample

STATS_SQL = """
SELECT
    (SELECT count(*) FROM alerts.alerts WHERE status = 'pending'),
    (SELECT min(first_due_at) FROM alerts.alerts
      WHERE status = 'pending' AND first_due_at <= %(now)s),
    (SELECT count(*) FROM alerts.alerts
      WHERE status = 'delivered' AND delivered_at > %(now)s - interval '1 hour'),
    (SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                ORDER BY extract(epoch FROM delivered_at - first_due_at))
       FROM alerts.alerts
      WHERE status = 'delivered' AND delivered_at > %(now)s - interval '1 hour')
"""

CHANNELS_SQL = """
SELECT c.name, c.kind, c.failing, c.consecutive_failures,
       (SELECT count(*) FROM alerts.alerts a WHERE a.channel_id = c.id AND a.status = 'pending'),
       count(t.id) FILTER (WHERE t.status = 'delivered'),
       count(t.id) FILTER (WHERE t.status IN ('failed', 'timeout')),
       count(t.id) FILTER (WHERE t.status = 'rate_limited')
FROM alerts.channels c
LEFT JOIN alerts.delivery_attempts t
       ON t.channel_id = c.id AND t.started_at > %(now)s - interval '1 hour'
GROUP BY c.id
ORDER BY c.name
"""


def outbox_stats(now: datetime) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(STATS_SQL, {"now": now})
        backlog, oldest, delivered, quantiles = cursor.fetchone()
        cursor.execute(CHANNELS_SQL, {"now": now})
        channels = [
            {
                "name": name,
                "kind": kind,
                "failing": failing,
                "consecutive_failures": consecutive,
                "backlog": pending,
                "delivered_last_hour": ok,
                "failures_last_hour": failed,
                "rate_limited_last_hour": limited,
            }
            for name, kind, failing, consecutive, pending, ok, failed, limited in cursor.fetchall()
        ]
    p50, p95 = quantiles if quantiles else (None, None)
    return {
        "backlog": backlog,
        "oldest_undelivered_age_seconds": (
            round((now - oldest).total_seconds(), 3) if oldest is not None else None
        ),
        "delivered_last_hour": delivered,
        "latency_p50_seconds": round(p50, 3) if p50 is not None else None,
        "latency_p95_seconds": round(p95, 3) if p95 is not None else None,
        "channels": channels,
    }


def outbox_check(now: datetime) -> dict[str, Any]:
    stats = outbox_stats(now)
    limit = settings.ALERTS_OUTBOX_MAX_AGE_SECONDS
    age = stats["oldest_undelivered_age_seconds"]
    check: dict[str, Any] = {
        "status": "ok" if age is None or age <= limit else "warning",
        "backlog": stats["backlog"],
        "oldest_age_seconds": age,
        "max_age_seconds": limit,
        "failing_channels": [c["name"] for c in stats["channels"] if c["failing"]],
    }
    if check["status"] == "warning":
        check["reason"] = f"an undelivered alert is older than {limit} s"
    return check


def outbox_families(now: datetime) -> list[Family]:
    stats = outbox_stats(now)
    age = stats["oldest_undelivered_age_seconds"]
    families: list[Family] = [
        ("alerts_backlog", "gauge", "Alerts not delivered yet.", [({}, stats["backlog"])]),
        (
            "alerts_oldest_undelivered_age_seconds",
            "gauge",
            "Age of the oldest alert due and not delivered.",
            [({}, age)] if age is not None else [],
        ),
        (
            "alerts_delivery_latency_seconds",
            "gauge",
            "Event to delivery over the last hour, by quantile.",
            [
                ({"quantile": q}, stats[key])
                for q, key in (("0.5", "latency_p50_seconds"), ("0.95", "latency_p95_seconds"))
                if stats[key] is not None
            ],
        ),
    ]
    channels = stats["channels"]
    for family, help_text, key in (
        ("alerts_channel_backlog", "Alerts not delivered yet, per channel.", "backlog"),
        ("alerts_channel_failures_last_hour", "Failed or timed-out sends.", "failures_last_hour"),
        ("alerts_channel_delivered_last_hour", "Delivered sends.", "delivered_last_hour"),
        ("alerts_channel_rate_limited_last_hour", "HTTP 429 answers.", "rate_limited_last_hour"),
        ("alerts_channel_failing", "1 when the channel is marked failing.", "failing"),
    ):
        samples: list[Sample] = [({"channel": c["name"]}, int(c[key])) for c in channels]
        families.append((family, "gauge", help_text, samples))
    return families


def install() -> None:
    from audit.monitoring import extensions

    extensions.readiness_checks["alerts_outbox"] = outbox_check
    extensions.metrics_sections["alerts"] = outbox_stats
    extensions.prometheus_families["alerts"] = outbox_families
