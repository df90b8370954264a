"""Counts and times every request (first in MIDDLEWARE, so it times the whole stack), and
answers 503 instead of 500 when the database cannot be reached.

Labels: the method, the route pattern the request resolved to (``/api/v1/trades/<int:pk>/``,
never the concrete path, so the label set stays small; ``<unmatched>`` for a 404 that matched
no route) and the status. The work per request is a dict update (audit/monitoring/store.py).
"""

import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponseBase, JsonResponse

from audit.monitoring import store
from trading.db import CONFLICT_ATTEMPTS, is_write_conflict

log = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RETRY_AFTER_SECONDS = 5
CONFLICT_RETRY_AFTER_SECONDS = 1


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return "/" + match.route if match is not None and match.route is not None else UNMATCHED


class MonitoringMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        if store.enabled():
            method = request.method if request.method in METHODS else "OTHER"
            store.http_observe(
                method=method,
                route=route_of(request),
                status=response.status_code,
                seconds=time.perf_counter() - start,
            )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        """PostgreSQL down, refusing connections or too busy to answer (a connection failure, a
        statement or lock timeout: Django's OperationalError) is the service being unavailable
        for a moment, not a bug: 503 with Retry-After, in the API's error format. A deadlock or
        serialization failure that outlasted its retries is a conflict between writers, not an
        outage: 503 too (what clients retry), saying so. Anything else goes on to 500."""
        if is_write_conflict(exception):
            return write_conflict_response(request)
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.error("database unavailable for %s %s", request.method, request.path, exc_info=True)
        return JsonResponse(
            {
                "error": "unavailable",
                "detail": "The database could not answer (unreachable, busy or timed out); "
                "try again shortly.",
            },
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def write_conflict_response(request: HttpRequest) -> JsonResponse:
    log.warning(
        "write conflict for %s %s (bots' writes are tried %d times)",
        request.method,
        request.path,
        CONFLICT_ATTEMPTS,
        exc_info=True,
    )
    return JsonResponse(
        {
            "error": "write_conflict",
            "detail": "The write conflicted with concurrent writes to the same rows (a deadlock "
            "or a serialization failure) and was rolled back, each time it was run; the "
            "database is up: send it again.",
        },
        status=503,
        headers={"Retry-After": str(CONFLICT_RETRY_AFTER_SECONDS)},
    )
