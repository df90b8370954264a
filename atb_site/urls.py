from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from audit.monitoring.views import health_live, health_ready, metrics
from trading.api.docs import SwaggerPage

admin.site.site_header = "Trading bots: operations"
admin.site.site_title = "Trading bots admin"
admin.site.index_title = "Registry, configurations and data"
admin.site.site_url = "/dashboard/"  # the admin's "View site"

# Every /api/ URL answers in the API's JSON error format, an unknown one too.
handler404 = "trading.api.errors.not_found"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:portfolio"), name="home"),
    path("health/live", health_live, name="health-live"),
    path("health/ready", health_ready, name="health-ready"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("trading.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("botconfig.api.urls")),
    path("api/v1/", include("analytics.api.urls")),
    path("api/v1/", include("alerts.urls")),
    path("dashboard/", include("analytics.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerPage.as_view(url_name="schema"), name="swagger-ui"),
]
