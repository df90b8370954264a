"""Every SQL statement any process runs, timed: an execute wrapper on each database connection.

Installed on every connection as it is created (``connection_created``), so queries are counted
in web requests, Celery tasks and management commands alike. The cost is two clock readings
and a dict update per query.
"""

import time
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from audit.monitoring import store


def query_timer(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    start = time.perf_counter()
    error = True
    try:
        result = execute(sql, params, many, context)
        error = False
        return result
    finally:
        store.db_observe(seconds=time.perf_counter() - start, error=error)


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # The wrapper object outlives its connections (it reconnects): install once.
    if store.enabled() and query_timer not in connection.execute_wrappers:
        connection.execute_wrappers.append(query_timer)


def install() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="atb-monitoring-query-timer")
