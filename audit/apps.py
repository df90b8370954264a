from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit: events, risk events, change log"

    def ready(self) -> None:
        # trading imports no other app, so its heartbeat service cannot write the change log
        # itself; the audit app registers the recorder it calls inside the same transaction.
        from audit import monitoring
        from audit.services import bot_run_change_record, bot_status_change_record
        from trading.services.live_state import bot_status_recorders
        from trading.services.runs import run_change_recorders

        if bot_status_change_record not in bot_status_recorders:
            bot_status_recorders.append(bot_status_change_record)
        if bot_run_change_record not in run_change_recorders:
            run_change_recorders.append(bot_run_change_record)
        # Query timing and Celery task outcomes in every process (audit/monitoring/).
        monitoring.install()
