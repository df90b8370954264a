"""/api/v1/ endpoints served by the audit app (included from atb_site/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
