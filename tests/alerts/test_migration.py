"""Migrations alerts 0001-0002 on a populated database of the previous schema: the triggers go
onto audit's tables holding events; the events already stored are not sent (no backlog of
history is paged out on release), the first new one is; and the migrations go back cleanly."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from alerts.models import Alert
from audit.models import RiskEvent
from tests.alerts.conftest import make_channel, make_rule
from tests.test_config_limits_migration import migrate

# Before the alerts app: its migrations unapplied, audit's and trading's latest.
BEFORE = [("audit", "0006_scheduled_runs"), ("trading", "0011_market_data_partitioned")]


def unmigrate_alerts() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("alerts", None)])


def alert_triggers() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%alerts' ORDER BY tgname")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_old_events_stay_quiet_and_new_ones_alert() -> None:
    unmigrate_alerts()
    apps = migrate(BEFORE)
    try:
        assert alert_triggers() == []
        Bot = apps.get_model("trading", "Bot")
        OldRiskEvent = apps.get_model("audit", "RiskEvent")
        OldSystemEvent = apps.get_model("audit", "SystemEvent")
        Bot.objects.create(
            bot_id="b1", name="b", strategy_type="momentum", exchange="binance",
            initial_capital_usd=10000,
        )  # fmt: skip
        old = OldRiskEvent.objects.create(
            ts=timezone.now(), bot_id="b1", event_type="drawdown_limit", severity="critical"
        )
        OldSystemEvent.objects.create(
            ts=timezone.now(), component="backups", event_type="backup_failed", message="x",
            severity="error",
        )  # fmt: skip

        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        assert alert_triggers() == [
            "change_log_alerts", "risk_events_alerts", "risk_events_resolved_alerts",
            "system_events_alerts",
        ]  # fmt: skip
        make_rule(make_channel("ops", "http://127.0.0.1:9/"), min_severity="info")
        RiskEvent.objects.filter(pk=old.pk).update(resolved=True, resolved_at=timezone.now())
        assert Alert.objects.count() == 0  # history is not paged out, nor its resolution
        new = RiskEvent.objects.create(
            ts=timezone.now(), bot_id="b1", event_type="leverage_limit", severity="warning"
        )
        assert list(Alert.objects.values_list("kind", "source_id")) == [("event", new.id)]
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
