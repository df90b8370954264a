"""/api/v1/: the analytics reads of API.md (bot summaries, equity, performance, portfolio)."""

from django.urls import URLPattern

app_name = "analytics-api"

urlpatterns: list[URLPattern] = []
