"""/api/v1/ endpoints served by the botconfig app (included from atb_site/urls.py)."""

from django.urls import URLPattern, path

from botconfig.api.config import ConfigView

urlpatterns: list[URLPattern] = [
    path("config/", ConfigView.as_view(), name="config"),
]
