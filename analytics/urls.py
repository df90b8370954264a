"""/dashboard/: the staff pages. They read everything from the JSON API."""

from django.urls import path

from analytics import views

app_name = "dashboard"

urlpatterns = [
    path("", views.portfolio_page, name="portfolio"),
    path("bots/<slug:bot_id>/", views.bot_page, name="bot"),
    path("reports/", views.reports_page, name="reports"),
    path("reports/<int:report_id>/", views.report_page, name="report"),
    path("reports/<int:report_id>/report.html", views.report_html, name="report-html"),
    path("reports/<int:report_id>/trades.csv", views.report_csv, name="report-csv"),
]
