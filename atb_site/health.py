"""The probes: ``/health/live``, ``/health/ready`` and ``/metrics`` (API.md "Probes and
operations"). Plain Django views, outside the API: no DRF authentication, throttling or
database lookup before they answer, so they answer with PostgreSQL or Redis down.

Who may call: ``/health/live`` and ``/health/ready`` are public (platform probes cannot log in;
they name no host, user or secret). ``/metrics`` is public unless ``METRICS_TOKEN`` is set, in
which case it wants ``Authorization: Bearer <METRICS_TOKEN>`` (checked without the database).
The logic is in audit/monitoring/.
"""

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from audit.monitoring.probes import readiness
from audit.monitoring.prometheus import CONTENT_TYPE, metrics_text


@never_cache
@require_safe
def health_live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 ``{"status": "ok", "checks": {...}}``, 503 when PostgreSQL or Redis is
    down (audit/monitoring/probes.py)."""
    status, body = readiness()
    return JsonResponse(body, status=status)


def _metrics_token_ok(request: HttpRequest) -> bool:
    token: str = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format (audit/monitoring/prometheus.py)."""
    if not _metrics_token_ok(request):
        response = JsonResponse(
            {"error": "not_authenticated", "detail": "Authorization: Bearer <METRICS_TOKEN>."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
