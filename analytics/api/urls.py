"""/api/v1/: the analytics reads of API.md (bot summaries, equity, performance, portfolio)."""

from django.urls import path

from analytics.api import views

app_name = "analytics-api"

urlpatterns = [
    path("bots/<slug:bot_id>/summary/", views.BotSummaryView.as_view(), name="bot-summary"),
    path(
        "bots/<slug:bot_id>/summary/compare/",
        views.BotSummaryCompareView.as_view(),
        name="bot-summary-compare",
    ),
    path("bots/<slug:bot_id>/reconcile/", views.BotReconcileView.as_view(), name="bot-reconcile"),
    path("bots/<slug:bot_id>/equity/", views.BotEquityView.as_view(), name="bot-equity"),
    path(
        "bots/<slug:bot_id>/performance/",
        views.BotPerformanceView.as_view(),
        name="bot-performance",
    ),
    path("bots/<slug:bot_id>/breakdown/", views.BotBreakdownView.as_view(), name="bot-breakdown"),
    path("portfolio/summary/", views.PortfolioSummaryView.as_view(), name="portfolio-summary"),
    path(
        "portfolio/performance/",
        views.PortfolioPerformanceView.as_view(),
        name="portfolio-performance",
    ),
    path(
        "portfolio/snapshots/",
        views.PortfolioSnapshotListView.as_view(),
        name="portfolio-snapshots",
    ),
]
