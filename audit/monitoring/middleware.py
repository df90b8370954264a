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

log = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RETRY_AFTER_SECONDS = 5


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
        statement or lock timeout, a deadlock: Django's OperationalError) is the service being
        unavailable for a moment, not a bug: 503 with Retry-After, in the API's error format.
        Anything else goes on to 500."""
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
