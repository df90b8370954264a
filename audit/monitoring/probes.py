"""Readiness: can this process serve? (``GET /health/ready``, API.md "Probes and operations").

Needed part (down: 503): PostgreSQL, through a fresh connection with ``connect_timeout`` and a
``statement_timeout`` of ``HEALTH_DATABASE_TIMEOUT`` seconds (a new connection, so a server that
is up but refuses new connections, at max_connections, is not ready either).

Redis is not needed to serve: every user of it falls back to PostgreSQL (or, the rate limit,
lets requests through). Unreachable, or skipped by this process's circuit breaker
(trading/redis_breaker.py), it is ``degraded``, still 200: a load balancer must not drop an
instance that serves. Its PING goes through the breaker: a Redis in trouble costs the probe at
most the cache's short socket timeouts (REDIS_CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT), and
nothing while the breaker is open.

Degraded parts (a warning, still 200): the age of the last beat run (the newest
``last_run_at`` of django_celery_beat's enabled entries, over ``HEALTH_BEAT_MAX_AGE_SECONDS``)
and of the last verified backup (``audit.selectors.backup_latest``, over
``HEALTH_BACKUP_MAX_AGE_SECONDS``), and whether the last restore drill failed
(``backup_last_drill``: the backup is named, not the error, which names hosts). None of these
can be known with PostgreSQL down: ``unknown``.

Read replicas (DATABASE_REPLICA_URL, atb_site/db/replicas.py) are never needed: staff reads
go to the primary while one lags past DATABASE_REPLICA_MAX_LAG_SECONDS or cannot be reached, and
``replicas`` then warns (still 200), with each replica's lag.

Statuses of a check: ``ok``, ``warning`` (old), ``degraded`` (Redis away), ``down`` (needed
and failing), ``unknown``.
Nothing here names a host, a user or a password: the answer is public.
"""

import importlib
import logging
import time
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Max
from django.utils import timezone

from atb_site.db import replicas
from atb_site.db.base import direct_connection_params
from audit.monitoring.store import redis_client
from trading.redis_breaker import redis_attempt, redis_skipped

log = logging.getLogger(__name__)

NEEDED = ("postgres",)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def fresh_connection(*, alias: str = DEFAULT_DB_ALIAS, timeout: int | None = None) -> Any:
    """A new autocommit psycopg connection with the parameters of Django's ``alias`` (outside
    Django's connection handling and any transaction). ``timeout``: connect timeout in seconds,
    and the statement timeout of a direct connection (its startup ``options``; behind PgBouncer
    a session's setting would stay on a server connection other clients then get, so the
    caller sets it per transaction: postgres_check). The caller closes it."""
    params = dict(connections[alias].get_connection_params())
    if timeout is not None:
        params["connect_timeout"] = max(int(timeout), 1)
        if not settings.DATABASE_PGBOUNCER:
            params["options"] = f"{params.get('options', '')} -c statement_timeout={timeout}s"
    return psycopg.connect(**params, autocommit=True)


def direct_connection() -> Any:
    """A new autocommit psycopg connection to the server itself, never through PgBouncer
    (atb_site.db.base.direct_connection_params). The caller closes it."""
    return psycopg.connect(**direct_connection_params(), autocommit=True)


def postgres_check() -> dict[str, Any]:
    start = time.perf_counter()
    timeout = int(getattr(settings, "HEALTH_DATABASE_TIMEOUT", 2))
    try:
        with fresh_connection(timeout=timeout) as conn:
            if settings.DATABASE_PGBOUNCER:  # the timeout for this transaction only
                with conn.transaction():
                    limit = f"{timeout}s"
                    conn.execute("SELECT set_config('statement_timeout', %s, true)", [limit])
                    conn.execute("SELECT 1").fetchone()
            else:
                conn.execute("SELECT 1").fetchone()
    except Exception as exc:
        log.warning("readiness: PostgreSQL check failed", exc_info=True)
        return {"status": "down", "latency_ms": _ms(start), "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": _ms(start)}


def redis_check() -> dict[str, Any]:
    start = time.perf_counter()
    found = redis_client()
    if found is None:
        return {"status": "unknown", "latency_ms": _ms(start), "error": "not Redis"}
    if redis_skipped():
        return {
            "status": "degraded",
            "latency_ms": _ms(start),
            "reason": "unreachable: skipped for a while, served from PostgreSQL",
        }
    failure: list[str] = []

    def ping() -> bool:
        try:
            return bool(found[0].ping())
        except Exception as exc:
            failure.append(type(exc).__name__)
            raise

    if not redis_attempt("readiness ping", ping, False):
        return {
            "status": "degraded",
            "latency_ms": _ms(start),
            "error": failure[0] if failure else "no answer",
            "reason": "unreachable: served from PostgreSQL",
        }
    return {"status": "ok", "latency_ms": _ms(start)}


def _age_check(last: datetime | None, *, now: datetime, max_age: int, never: str) -> dict[str, Any]:
    if last is None:
        return {
            "status": "warning",
            "last_at": None,
            "age_seconds": None,
            "max_age_seconds": max_age,
            "reason": never,
        }
    age = round((now - last).total_seconds(), 3)
    check: dict[str, Any] = {
        "status": "ok" if age <= max_age else "warning",
        "last_at": last.isoformat(),
        "age_seconds": age,
        "max_age_seconds": max_age,
    }
    if age > max_age:
        check["reason"] = f"older than {max_age} s"
    return check


def _unknown(max_age: int, reason: str) -> dict[str, Any]:
    return {
        "status": "unknown",
        "last_at": None,
        "age_seconds": None,
        "max_age_seconds": max_age,
        "reason": reason,
    }


def beat_last_run() -> datetime | None:
    """The newest run of any enabled beat entry (django_celery_beat saves ``last_run_at`` as it
    sends a task, in batches every few minutes)."""
    from django_celery_beat.models import PeriodicTask

    last: datetime | None = PeriodicTask.objects.filter(enabled=True).aggregate(
        last=Max("last_run_at")
    )["last"]
    return last


def backup_last_good() -> tuple[bool, datetime | None]:
    """(whether backups are set up at all, when the last verified backup finished)."""
    selectors = importlib.import_module("audit.selectors")
    backup_latest = getattr(selectors, "backup_latest", None)
    if backup_latest is None:
        return False, None
    backup = backup_latest(verified=True)
    if backup is None:
        return True, None
    finished: datetime | None = getattr(backup, "finished_at", None) or getattr(
        backup, "started_at", None
    )
    return True, finished


def beat_check(*, now: datetime) -> dict[str, Any]:
    max_age = int(getattr(settings, "HEALTH_BEAT_MAX_AGE_SECONDS", 600))
    try:
        last = beat_last_run()
    except Exception as exc:
        log.warning("readiness: beat check failed", exc_info=True)
        return _unknown(max_age, type(exc).__name__)
    return _age_check(last, now=now, max_age=max_age, never="beat has not run yet")


def backup_check(*, now: datetime) -> dict[str, Any]:
    max_age = int(getattr(settings, "HEALTH_BACKUP_MAX_AGE_SECONDS", 7200))
    try:
        set_up, last = backup_last_good()
        drill = importlib.import_module("audit.selectors").backup_last_drill() if set_up else None
    except Exception as exc:
        log.warning("readiness: backup check failed", exc_info=True)
        return _unknown(max_age, type(exc).__name__)
    if not set_up:
        return _unknown(max_age, "backups are not set up")
    check = _age_check(last, now=now, max_age=max_age, never="no verified backup yet")
    if drill is not None and drill.drill_error and drill.drilled_at:
        # A warning, not a 503: the instance serves; its backups need an operator.
        failed = f"the restore drill of backup {drill.pk} failed at {drill.drilled_at.isoformat()}"
        check.update(status="warning", failed_drill={"backup_id": drill.pk})
        check["reason"] = "; ".join(filter(None, [check.get("reason"), failed]))
    return check


def replicas_check() -> dict[str, Any]:
    """Each read replica's lag as this process last measured it (checked again when due)."""
    try:
        states = {state.alias: state.as_check() for state in replicas.replica_states()}
    except Exception as exc:
        log.warning("readiness: replica check failed", exc_info=True)
        return {"status": "unknown", "error": type(exc).__name__}
    status = "ok" if all(s["status"] == "ok" for s in states.values()) else "warning"
    return {"status": status, "replicas": states}


def extension_checks(*, now: datetime) -> dict[str, dict[str, Any]]:
    """The checks other apps registered (audit/monitoring/extensions.py); warnings at most."""
    from audit.monitoring.extensions import readiness_checks

    found: dict[str, dict[str, Any]] = {}
    for name, check in sorted(readiness_checks.items()):
        try:
            found[name] = check(now)
        except Exception:
            log.warning("readiness: %s check failed", name, exc_info=True)
            found[name] = {"status": "unknown", "reason": "the check failed"}
    return found


def readiness(*, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 ``{"status": "ok", ...}`` or 503 ``{"status": "unavailable",
    ...}``; ``failed`` names the needed checks that are down, ``warnings`` the others that are
    not ok."""
    now = now or timezone.now()
    checks: dict[str, dict[str, Any]] = {"postgres": postgres_check(), "redis": redis_check()}
    if checks["postgres"]["status"] == "ok":
        checks["beat"] = beat_check(now=now)
        checks["backup"] = backup_check(now=now)
        if replicas.replica_aliases():
            checks["replicas"] = replicas_check()
        checks.update(extension_checks(now=now))
    else:
        checks["beat"] = _unknown(
            int(getattr(settings, "HEALTH_BEAT_MAX_AGE_SECONDS", 600)), "postgres is down"
        )
        checks["backup"] = _unknown(
            int(getattr(settings, "HEALTH_BACKUP_MAX_AGE_SECONDS", 7200)), "postgres is down"
        )
    failed = [name for name in NEEDED if checks[name]["status"] == "down"]
    warnings = [
        name for name, check in checks.items() if name not in failed and check["status"] != "ok"
    ]
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": checks,
        "failed": failed,
        "warnings": warnings,
    }
    return (503 if failed else 200), body
