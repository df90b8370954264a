"""The probes: ``/health/live``, ``/health/ready`` and ``/metrics`` (API.md "Probes and
operations"). Plain Django views, outside the API: no DRF authentication, throttling or
database lookup before they answer, so they answer with PostgreSQL or Redis down.

Who may call: ``/health/live`` and ``/health/ready`` are public (platform probes cannot log in;
they name no host, user or secret). ``/metrics`` names bots and tables, so, as API.md has it
for everything but liveness, it wants a caller: ``Authorization: Bearer <METRICS_TOKEN>`` (a
scraper's shared secret, checked without the database, so it answers with PostgreSQL down), a
staff user's API token, or a staff session. The checks are in probes.py, the text in
prometheus.py; atb_site/urls.py routes to these views.
"""

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from audit.monitoring.probes import readiness
from audit.monitoring.prometheus import CONTENT_TYPE, metrics_text
from trading.services.tokens import token_authenticate


@never_cache
@require_safe
def health_live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 ``{"status": "ok", "checks": {...}}`` (Redis away is ``degraded``, still
    200), 503 when PostgreSQL is down (audit/monitoring/probes.py)."""
    status, body = readiness()
    return JsonResponse(body, status=status)


def _may_scrape(request: HttpRequest) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and given:
        token: str = settings.METRICS_TOKEN
        if token and secrets.compare_digest(given.encode(), token.encode()):
            return True
        api_token = token_authenticate(key=given)
        return bool(api_token and api_token.user and api_token.user.is_staff)
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format (audit/monitoring/prometheus.py)."""
    if not _may_scrape(request):
        response = JsonResponse(
            {
                "error": "not_authenticated",
                "detail": "Authorization: Bearer <METRICS_TOKEN> or a staff token, or a staff "
                "session.",
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
