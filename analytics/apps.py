from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics: metrics and portfolio snapshots"

    def ready(self) -> None:
        # audit imports no app above it: its database optimize refreshes our views first
        # because we register the refresh with it.
        from analytics.services import views_refresh
        from analytics.sql import MATERIALIZED_VIEWS
        from audit.monitoring.maintenance import views_refresh_register

        views_refresh_register(tuple(MATERIALIZED_VIEWS), views_refresh)
