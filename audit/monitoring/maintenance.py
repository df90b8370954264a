"""``POST /api/v1/database/optimize``: refresh the materialized views, then VACUUM (ANALYZE) every
table and materialized view of our schemas, and record it (a system event).

VACUUM cannot run inside a transaction block, so it runs on a connection of its own in autocommit
mode, outside any transaction of the request, to the server itself (behind PgBouncer,
DATABASE_DIRECT_URL: the session lock and setting below would not stay with one session). That
connection also holds a session advisory lock for the whole run, so two runs never overlap (the
second is refused at once), and a ``lock_timeout``: a table another session holds a conflicting
lock on is skipped (and said so) rather than waited for. The views are refreshed first, since a
CONCURRENTLY refresh leaves dead rows behind that the VACUUM then clears: audit imports no app
above it, so the app that owns them registers its refresh here (analytics, in its AppConfig.ready).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from psycopg import errors, sql

from audit.monitoring.probes import direct_connection
from audit.services.records import system_event_record
from trading.db import advisory_lock_key

OPTIMIZE_LOCK = "audit.database_optimize"
LOCK_TIMEOUT = "5s"
COMPONENT, EVENT_TYPE = "database", "database_optimize"

RELATIONS_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
ORDER BY n.nspname, c.relname
"""


@dataclass(frozen=True)
class ViewsRefresh:
    """A refresh of materialized views that runs before the VACUUM, as one step."""

    views: tuple[str, ...]  # their names, "analytics.bot_daily_performance", ...
    refresh: Callable[[], None]


# Filled by the apps that own materialized views, once each (their AppConfig.ready).
views_refreshes: list[ViewsRefresh] = []


def views_refresh_register(views: tuple[str, ...], refresh: Callable[[], None]) -> None:
    """Have optimize refresh ``views`` with ``refresh`` before it vacuums (idempotent)."""
    entry = ViewsRefresh(tuple(views), refresh)
    if entry not in views_refreshes:
        views_refreshes.append(entry)


class OptimizeBusy(Exception):
    """Another optimize run holds the lock."""


@dataclass
class Step:
    target: str  # "trading.trades"; for the refresh, the views' names joined by ", "
    action: str  # "vacuum_analyze" or "refresh"
    status: str  # "done" or "skipped"
    seconds: float
    reason: str = ""


@dataclass
class OptimizeReport:
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    event_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "event_id": self.event_id,
            "steps": [
                {
                    "target": s.target,
                    "action": s.action,
                    "status": s.status,
                    "seconds": s.seconds,
                    "reason": s.reason,
                }
                for s in self.steps
            ],
        }


def _elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 4)


def database_optimize(*, user: User) -> OptimizeReport:
    """Refresh the views, VACUUM (ANALYZE) each relation of our schemas, record who did it and
    what was done. Raises OptimizeBusy when another run is under way."""
    started = time.perf_counter()
    report = OptimizeReport()
    with direct_connection() as conn:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [LOCK_TIMEOUT])
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s)", [advisory_lock_key(OPTIMIZE_LOCK)]
        ).fetchone()
        if not (row and row[0]):
            raise OptimizeBusy("Another optimize run is under way; try again when it is done.")

        # Each registered refresh is one step (analytics': both views in one transaction).
        for entry in views_refreshes:
            step_start = time.perf_counter()
            entry.refresh()
            report.steps.append(
                Step(", ".join(entry.views), "refresh", "done", _elapsed(step_start))
            )

        relations = conn.execute(RELATIONS_SQL, [list(settings.DATABASE_APP_SCHEMAS)]).fetchall()
        for schema, name in relations:
            step_start = time.perf_counter()
            target = f"{schema}.{name}"
            try:
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, name)))
            except errors.LockNotAvailable:
                report.steps.append(
                    Step(
                        target,
                        "vacuum_analyze",
                        "skipped",
                        _elapsed(step_start),
                        f"locked by another session for over {LOCK_TIMEOUT}",
                    )
                )
                continue
            report.steps.append(Step(target, "vacuum_analyze", "done", _elapsed(step_start)))
        # Closing the connection releases the advisory lock.
    report.seconds = _elapsed(started)
    done = [s for s in report.steps if s.status == "done"]
    event = system_event_record(
        component=COMPONENT,
        event_type=EVENT_TYPE,
        message=(
            f"{user.get_username()} ran database optimize: "
            f"{sum(len(entry.views) for entry in views_refreshes)} views refreshed, "
            f"{sum(s.action == 'vacuum_analyze' for s in done)} relations vacuumed and "
            f"analyzed, {len(report.steps) - len(done)} skipped, in {report.seconds} s."
        ),
        details={"user_id": user.pk, "username": user.get_username(), **report.as_json()},
    )
    report.event_id = event.pk
    return report
