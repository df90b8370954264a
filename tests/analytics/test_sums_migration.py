"""Migrations trading 0009 and analytics 0007 on a populated database of the previous schema:
the sum columns widen to NUMERIC(38, 8), every row is kept to the digit, no table is rewritten
(the same relfilenode: PostgreSQL only changes the catalog when a numeric's precision grows and
its scale stays), and a sum past the old 12 digits before the point now fits."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.models import PortfolioSnapshot
from analytics.services.snapshots import SNAPSHOT_MONEY_FIELDS
from tests.test_config_limits_migration import migrate
from trading.models import RiskMetric

BEFORE = [("trading", "0008_price_cache_epoch"), ("analytics", "0006_snapshot_taken_at")]
TS = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OLD_MAX = Decimal("999999999999.99999999")
WIDER = Decimal("1234567890123456789012.12345678")  # 22 digits before the point
SNAPSHOT_SUMS = (*SNAPSHOT_MONEY_FIELDS, "var_95_usd", "var_99_usd")
RISK_SUMS = (
    "gross_profit_usd",
    "gross_loss_usd",
    "net_pnl_usd",
    "fees_usd",
    "exposure_usd",
    "equity_close_usd",
    "equity_peak_usd",
)


def columns() -> dict[str, tuple[int, int, int]]:
    """Each sum column: (precision, scale, its table's relfilenode)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.column_name, c.numeric_precision, c.numeric_scale,
                   pg_relation_filenode(format('%%I.%%I', c.table_schema, c.table_name))
            FROM information_schema.columns c
            WHERE (c.table_schema, c.table_name) IN
                  (('analytics', 'portfolio_snapshots'), ('trading', 'risk_metrics'))
              AND c.column_name = ANY(%s)
            """,
            [list(SNAPSHOT_SUMS + RISK_SUMS)],
        )
        return {name: (p, s, node) for name, p, s, node in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_the_sum_columns_widen_in_place_keeping_every_row() -> None:
    apps = migrate(BEFORE)
    try:
        OldBot = apps.get_model("trading", "Bot")
        OldRisk = apps.get_model("trading", "RiskMetric")
        OldSnapshot = apps.get_model("analytics", "PortfolioSnapshot")
        bot = OldBot.objects.create(
            bot_id="old", name="old", strategy_type="grid", exchange="binance",
            initial_capital_usd=Decimal(1000),
        )  # fmt: skip
        OldSnapshot.objects.create(ts=TS, **dict.fromkeys(SNAPSHOT_SUMS, -OLD_MAX))
        OldRisk.objects.create(
            bot=bot, date=date(2026, 12, 7), computed_at=TS, **dict.fromkeys(RISK_SUMS, OLD_MAX)
        )
        before = columns()
        assert {p for p, _, _ in before.values()} == {20}

        executor = MigrationExecutor(connection)
        migrate(executor.loader.graph.leaf_nodes())

        after = columns()
        assert after == {name: (38, 8, node) for name, (_, _, node) in before.items()}
        snapshot = PortfolioSnapshot.objects.values(*SNAPSHOT_SUMS).get()
        assert snapshot == dict.fromkeys(SNAPSHOT_SUMS, -OLD_MAX)
        risk = RiskMetric.objects.values(*RISK_SUMS).get()
        assert risk == dict.fromkeys(RISK_SUMS, OLD_MAX)
        PortfolioSnapshot.objects.update(**dict.fromkeys(SNAPSHOT_SUMS, WIDER))
        RiskMetric.objects.update(**dict.fromkeys(RISK_SUMS, WIDER))
        assert PortfolioSnapshot.objects.values(*SNAPSHOT_SUMS).get() == dict.fromkeys(
            SNAPSHOT_SUMS, WIDER
        )
        assert RiskMetric.objects.values(*RISK_SUMS).get() == dict.fromkeys(RISK_SUMS, WIDER)
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
