"""/dashboard/: the staff pages. They read everything from the JSON API."""

from django.urls import URLPattern

app_name = "dashboard"

urlpatterns: list[URLPattern] = []
