"""/api/v1/ endpoints served by the alerts app (included from atb_site/urls.py)."""

from django.urls import URLPattern, path

from alerts.api import AcknowledgementsView

urlpatterns: list[URLPattern] = [
    path("alerts/acknowledgements", AcknowledgementsView.as_view(), name="alerts-acknowledgements"),
]
