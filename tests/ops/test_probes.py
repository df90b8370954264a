"""/health/live and /health/ready: exact answers, and fast 503s naming the part that is down."""

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client, override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import Backup
from audit.monitoring import probes

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def dead_redis_caches(settings: Any) -> dict[str, Any]:
    default = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{dead_port()}/0"}
    return {"default": default}


def beat_ran_at(when: datetime) -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(
        name="probe-test", task="analytics.risk_limits_check", interval=every, last_run_at=when
    )


def backup_finished_at(when: datetime) -> Backup:
    from django.db import connection

    return Backup.objects.create(
        database=connection.settings_dict["NAME"],
        status="ok",
        started_at=when - timedelta(minutes=2),
        finished_at=when,
        path="/backups/x.dump",
        size_bytes=1234,
        sha256="0" * 64,
        verified=True,
    )


def without_latency(body: dict[str, Any]) -> dict[str, Any]:
    for check in body["checks"].values():
        assert isinstance(check.pop("latency_ms", 0.0), float)
    return body


def test_live_answers_without_touching_the_database_or_redis(
    settings: Any, django_assert_num_queries: Any
) -> None:
    with override_settings(CACHES=dead_redis_caches(settings)), django_assert_num_queries(0):
        response = Client().get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_ready_with_everything_up_and_fresh_is_ok_with_every_check() -> None:
    beat_ran_at(NOW - timedelta(seconds=90))
    backup_finished_at(NOW - timedelta(minutes=30))

    status, body = probes.readiness(now=NOW)

    assert status == 200
    assert without_latency(body) == {
        "status": "ok",
        "checks": {
            "postgres": {"status": "ok"},
            "redis": {"status": "ok"},
            "beat": {
                "status": "ok",
                "last_at": "2026-03-02T11:58:30+00:00",
                "age_seconds": 90.0,
                "max_age_seconds": 600,
            },
            "backup": {
                "status": "ok",
                "last_at": "2026-03-02T11:30:00+00:00",
                "age_seconds": 1800.0,
                "max_age_seconds": 7200,
            },
            "alerts_outbox": {
                "status": "ok",
                "backlog": 0,
                "oldest_age_seconds": None,
                "max_age_seconds": 300,
                "failing_channels": [],
            },
        },
        "failed": [],
        "warnings": [],
    }


def test_ready_over_http_is_public_and_not_cached() -> None:
    response = Client().get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"postgres", "redis", "beat", "backup", "alerts_outbox"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_stale_beat_and_backup_are_warnings_not_failures(settings: Any) -> None:
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 60
    settings.HEALTH_BACKUP_MAX_AGE_SECONDS = 3600
    beat_ran_at(NOW - timedelta(seconds=61))
    backup_finished_at(NOW - timedelta(hours=3))

    status, body = probes.readiness(now=NOW)

    assert status == 200
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["warnings"] == ["beat", "backup"]
    assert body["checks"]["beat"] == {
        "status": "warning",
        "last_at": "2026-03-02T11:58:59+00:00",
        "age_seconds": 61.0,
        "max_age_seconds": 60,
        "reason": "older than 60 s",
    }
    assert body["checks"]["backup"]["status"] == "warning"
    assert body["checks"]["backup"]["age_seconds"] == 10800.0


def test_never_run_beat_and_no_backup_are_warnings_saying_so() -> None:
    status, body = probes.readiness(now=NOW)

    assert status == 200
    assert body["warnings"] == ["beat", "backup"]
    assert body["checks"]["beat"] == {
        "status": "warning",
        "last_at": None,
        "age_seconds": None,
        "max_age_seconds": 600,
        "reason": "beat has not run yet",
    }
    assert body["checks"]["backup"]["reason"] == "no verified backup yet"


def test_without_backup_support_the_backup_check_is_unknown(monkeypatch: Any) -> None:
    import audit.selectors

    monkeypatch.delattr(audit.selectors, "backup_latest")

    status, body = probes.readiness(now=NOW)

    assert status == 200
    assert body["checks"]["backup"] == {
        "status": "unknown",
        "last_at": None,
        "age_seconds": None,
        "max_age_seconds": 7200,
        "reason": "backups are not set up",
    }


def test_redis_down_is_degraded_still_200_fast(settings: Any) -> None:
    # A load balancer must not drop an instance that serves: PostgreSQL answers for Redis.
    with override_settings(CACHES=dead_redis_caches(settings)):
        start = time.monotonic()
        response = Client().get("/health/ready")
        elapsed = time.monotonic() - start

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert "redis" in body["warnings"]
    redis = body["checks"]["redis"]
    assert (redis["status"], redis["error"]) == ("degraded", "ConnectionError")
    assert body["checks"]["postgres"]["status"] == "ok"
    assert elapsed < 2.0


def test_with_the_breaker_open_redis_is_degraded_without_a_ping(settings: Any) -> None:
    settings.REDIS_BREAKER_FAILURES = 2
    settings.REDIS_BREAKER_COOLDOWN_SECONDS = 60
    with override_settings(CACHES=dead_redis_caches(settings)):
        first, second, third = (probes.redis_check() for _ in range(3))

    assert [first["status"], second["status"], third["status"]] == ["degraded"] * 3
    assert first["error"] == second["error"] == "ConnectionError"
    assert "error" not in third  # skipped: no call to Redis
    assert third["reason"] == "unreachable: skipped for a while, served from PostgreSQL"


def test_postgres_down_is_503_naming_postgres_fast_and_live_stays_200(monkeypatch: Any) -> None:
    # A new connection to a port nothing listens on: what the probe opens when PostgreSQL is down.
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", str(dead_port()))

    start = time.monotonic()
    status, body = probes.readiness(now=NOW)
    elapsed = time.monotonic() - start

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["postgres"]
    assert body["checks"]["postgres"]["status"] == "down"
    assert body["checks"]["postgres"]["error"] == "OperationalError"
    assert body["checks"]["beat"]["status"] == "unknown"
    assert body["checks"]["beat"]["reason"] == "postgres is down"
    assert body["checks"]["backup"]["status"] == "unknown"
    assert body["warnings"] == ["beat", "backup"]
    assert elapsed < 2.0
    assert Client().get("/health/live").status_code == 200


def test_the_ready_answer_names_no_host_user_or_password(settings: Any) -> None:
    with override_settings(CACHES=dead_redis_caches(settings)):
        text = Client().get("/health/ready").content.decode()

    assert "127.0.0.1" not in text
    assert "postgres://" not in text
    assert "redis://" not in text
