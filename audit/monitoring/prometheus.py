"""``GET /metrics``: the Prometheus text exposition format (version 0.0.4), written by hand.

Counters come from Redis (every process's, added up: audit/monitoring/store.py), so any web
process answers for all of them; gauges are read from PostgreSQL at scrape time. Whatever part
is down, the answer still comes, with what could be read: ``atb_database_up 0`` (and no table,
backup, beat or heartbeat gauges), or ``atb_redis_up 0`` (and no counters).

Families (all prefixed ``atb_``): up/ready gauges (``database_up``, ``redis_up``, ``ready``);
``http_requests_total{method,route,status}``; ``http_request_duration_seconds{method,route}``
(histogram); ``db_query_duration_seconds`` (histogram: its ``_count`` is the query count);
``db_query_errors_total``; ``celery_tasks_total{task,outcome}``; ``db_connections{state}``;
``table_size_bytes{schema,table}``; ``table_rows_estimate{schema,table}``;
``backup_age_seconds`` (the last verified backup; absent until there is one);
``beat_last_run_age_seconds`` (absent until beat ran); ``bot_heartbeat_age_seconds{bot_id}``
(bots that have sent a heartbeat); ``database_replica_lag_seconds{replica}`` (NaN while
unknown) and ``database_replica_up{replica}`` (1 when it serves staff reads: reachable and
within DATABASE_REPLICA_MAX_LAG_SECONDS), with DATABASE_REPLICA_URL.
"""

import logging
import math
from datetime import datetime
from typing import Any

from django.utils import timezone

from atb_site.db import replicas
from audit.monitoring import probes, selectors, store
from audit.monitoring.store import Histogram, Snapshot

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "atb_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> str:
        full = PREFIX + name
        self.lines.append(f"# HELP {full} {help_text}")
        self.lines.append(f"# TYPE {full} {kind}")
        return full

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        if labels:
            body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{body}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def histogram(self, name: str, hist: Histogram, labels: dict[str, str] | None = None) -> None:
        labels = labels or {}
        cumulative = 0
        for bound, count in zip((*hist.bounds, math.inf), hist.counts, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else repr(bound)
            self.sample(f"{name}_bucket", cumulative, {**labels, "le": le})
        self.sample(f"{name}_sum", hist.sum, labels)
        self.sample(f"{name}_count", hist.count, labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _counters(out: Exposition, snap: Snapshot | None) -> None:
    name = out.family("http_requests_total", "counter", "HTTP requests by method, route, status.")
    for (method, route, status), count in sorted((snap.http_requests if snap else {}).items()):
        out.sample(name, count, {"method": method, "route": route, "status": status})

    name = out.family(
        "http_request_duration_seconds", "histogram", "HTTP request latency, whole stack."
    )
    for (method, route), hist in sorted((snap.http_latency if snap else {}).items()):
        out.histogram(name, hist, {"method": method, "route": route})

    name = out.family(
        "db_query_duration_seconds", "histogram", "SQL statement latency, every process."
    )
    if snap is not None:
        out.histogram(name, snap.db)
    name = out.family("db_query_errors_total", "counter", "SQL statements that raised an error.")
    if snap is not None:
        out.sample(name, snap.db_errors)

    name = out.family("celery_tasks_total", "counter", "Celery tasks by name and outcome.")
    for (task, outcome), count in sorted((snap.celery if snap else {}).items()):
        out.sample(name, count, {"task": task, "outcome": outcome})


def _database_gauges(out: Exposition, now: datetime) -> bool:
    """The gauges read from PostgreSQL; False (and only their headers) when it is down."""
    data: dict[str, Any] = {}
    try:
        data["connections"] = selectors.connection_stats()
        data["tables"] = selectors.table_sizes()
        data["heartbeats"] = selectors.bot_heartbeats()
        data["beat"] = probes.beat_last_run()
        data["backup"] = probes.backup_last_good()[1]
        up = True
    except Exception:
        log.warning("metrics: PostgreSQL could not be read", exc_info=True)
        up = False

    name = out.family("db_connections", "gauge", "Client connections to our database by state.")
    for state in ("total", "in_use", "active", "idle", "idle_in_transaction", "max_connections"):
        if up:
            out.sample(name, data["connections"][state], {"state": state})

    size = out.family("table_size_bytes", "gauge", "Table size with indexes and TOAST.")
    for t in data.get("tables", []):
        out.sample(size, t.total_bytes, {"schema": t.schema, "table": t.table})
    rows = out.family("table_rows_estimate", "gauge", "The planner's row count estimate.")
    for t in data.get("tables", []):
        if t.rows_estimate is not None:
            out.sample(rows, t.rows_estimate, {"schema": t.schema, "table": t.table})

    name = out.family("backup_age_seconds", "gauge", "Age of the last verified backup.")
    if data.get("backup") is not None:
        out.sample(name, round((now - data["backup"]).total_seconds(), 3))
    name = out.family("beat_last_run_age_seconds", "gauge", "Age of the last beat run.")
    if data.get("beat") is not None:
        out.sample(name, round((now - data["beat"]).total_seconds(), 3))
    name = out.family("bot_heartbeat_age_seconds", "gauge", "Age of each bot's last heartbeat.")
    for bot_id, ts in data.get("heartbeats", []):
        out.sample(name, round((now - ts).total_seconds(), 3), {"bot_id": bot_id})
    return up


def _replica_gauges(out: Exposition) -> None:
    states = replicas.replica_states()
    lag = out.family("database_replica_lag_seconds", "gauge", "A read replica's replay lag.")
    for state in states:
        value = math.nan if state.lag_seconds is None else state.lag_seconds
        out.sample(lag, value, {"replica": state.alias})
    up = out.family("database_replica_up", "gauge", "1 when a read replica serves staff reads.")
    for state in states:
        out.sample(up, int(state.usable), {"replica": state.alias})


def _extension_families(out: Exposition, now: datetime) -> None:
    """The families other apps registered (audit/monitoring/extensions.py)."""
    from audit.monitoring.extensions import prometheus_families

    for provider_name, provider in sorted(prometheus_families.items()):
        try:
            families = provider(now)
        except Exception:
            log.warning("metrics: %s could not be read", provider_name, exc_info=True)
            continue
        for family, kind, help_text, samples in families:
            name = out.family(family, kind, help_text)
            for labels, value in samples:
                out.sample(name, value, labels or None)


def metrics_text(*, now: datetime | None = None) -> str:
    now = now or timezone.now()
    # This process's latest counts first, so that its own requests show. A failed flush is
    # Redis down: no second timeout for the read.
    snap: Snapshot | None = store.snapshot() if store.flush() else None

    out = Exposition()
    _counters(out, snap)
    database_up = _database_gauges(out, now)
    if database_up and replicas.replica_aliases():
        _replica_gauges(out)
    if database_up:
        _extension_families(out, now)
    for name, value, help_text in (
        ("database_up", database_up, "1 when PostgreSQL answered this scrape."),
        ("redis_up", snap is not None, "1 when Redis answered this scrape."),
        ("ready", database_up, "1 when every needed part (PostgreSQL) is up."),
    ):
        out.sample(out.family(name, "gauge", help_text), int(value))
    return out.text()
