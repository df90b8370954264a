"""/api/v1/ endpoints served by the audit app (included from atb_site/urls.py)."""

from django.urls import URLPattern, path

from audit.api.database import (
    DatabaseConnectionInfoView,
    DatabaseHealthView,
    DatabaseMetricsView,
    DatabaseOptimizeView,
)
from audit.api.events import EventWriteView
from audit.api.quality import DataQualityView
from audit.api.reads import READ_URLPATTERNS

urlpatterns: list[URLPattern] = [
    path("events/", EventWriteView.as_view(), name="events"),
    *READ_URLPATTERNS,
    path("data-quality/", DataQualityView.as_view(), name="data-quality"),
    path("database/health", DatabaseHealthView.as_view(), name="database-health"),
    path("database/metrics", DatabaseMetricsView.as_view(), name="database-metrics"),
    path(
        "database/connection-info",
        DatabaseConnectionInfoView.as_view(),
        name="database-connection-info",
    ),
    path("database/optimize", DatabaseOptimizeView.as_view(), name="database-optimize"),
]
