"""/api/v1/ endpoints served by the audit app (included from atb_site/urls.py)."""

from django.urls import URLPattern, path

from audit.api.events import EventWriteView
from audit.api.quality import DataQualityView
from audit.api.reads import READ_URLPATTERNS

urlpatterns: list[URLPattern] = [
    path("events/", EventWriteView.as_view(), name="events"),
    *READ_URLPATTERNS,
    path("data-quality/", DataQualityView.as_view(), name="data-quality"),
]
