"""Migration analytics 0009 (the reports' tables) on a populated database of the previous schema:
the figures stored before stay, the tables and their key arrive, and it goes back cleanly."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tests.test_config_limits_migration import migrate

BEFORE = [("analytics", "0008_portfolio_daily_pnl")]
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
            " AND table_name LIKE 'report%%' ORDER BY table_name"
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_reports_arrive_on_a_populated_database_and_go_back() -> None:
    apps = migrate(BEFORE)
    try:
        assert tables() == []
        Snapshot = apps.get_model("analytics", "PortfolioSnapshot")
        Snapshot.objects.create(ts=T0, total_equity_usd=10100, total_balance_usd=10000)

        apps = migrate([("analytics", "0009_reports")])

        assert tables() == ["report_recipient_lists", "reports"]
        assert list(Snapshot.objects.values_list("ts", flat=True)) == [T0]
        Lists = apps.get_model("analytics", "ReportRecipientList")
        Report = apps.get_model("analytics", "Report")
        desk = Lists.objects.create(name="desk", period="daily", recipients="d@x.example")
        fields = {
            "recipient_list": desk, "period": "daily", "start": T0, "end": T0 + timedelta(days=1),
            "generated_at": T0, "figures_json": "{}", "html": "", "trades_csv": "",
            "recipients": "d@x.example",
        }  # fmt: skip
        Report.objects.create(**fields)
        with pytest.raises(IntegrityError), transaction.atomic():
            Report.objects.create(**fields)  # the same list, period and start
        with pytest.raises(IntegrityError), transaction.atomic():
            Lists.objects.create(name="other", period="monthly", recipients="d@x.example")
        Report.objects.all().delete()
        Lists.objects.all().delete()

        migrate(BEFORE)
        assert tables() == []
        assert Snapshot.objects.count() == 1
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
