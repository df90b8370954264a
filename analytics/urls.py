"""/dashboard/: the staff pages. They read everything from the JSON API."""

from django.urls import path

from analytics import views

app_name = "dashboard"

urlpatterns = [
    path("", views.portfolio_page, name="portfolio"),
    path("bots/<slug:bot_id>/", views.bot_page, name="bot"),
]
