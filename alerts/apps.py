from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts: channels, rules, outbox, deliveries"

    def ready(self) -> None:
        # The outbox in /metrics, /api/v1/database/metrics and /health/ready (audit can't
        # import alerts: it reads what alerts registers).
        from alerts import monitoring

        monitoring.install()
