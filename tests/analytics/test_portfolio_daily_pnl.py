"""analytics.portfolio_daily_pnl, the fleet's realized pnl per UTC day that the portfolio's VaR
reads: each day's sum over bots of the daily view (backtests and open trades out), refreshed with
the other views, and filled by its migration (analytics 0008) from a populated database of the
previous schema."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.services.views import views_refresh
from analytics.sql import DAILY_PERFORMANCE_VIEW, PORTFOLIO_DAILY_VIEW
from tests.factories import make_bot, make_closed_trade, make_trade
from tests.test_config_limits_migration import migrate

DAY = datetime(2026, 12, 5, tzinfo=UTC)


def rows() -> list[tuple[date, Decimal]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT day, net_pnl_usd FROM {PORTFOLIO_DAILY_VIEW} ORDER BY day")  # noqa: S608
        return cursor.fetchall()


def trades() -> None:
    """Two bots over two days and the midnight between; a backtest and an open trade that no
    sum counts."""
    alpha = make_bot("alpha", initial_capital_usd=Decimal("1000"))
    beta = make_bot("beta", initial_capital_usd=Decimal("2000"))
    for bot, exit_, pnl in [
        (alpha, DAY + timedelta(hours=3), "10.12345678"),
        (alpha, DAY + timedelta(hours=23, minutes=59), "-2.5"),
        (beta, DAY + timedelta(hours=12), "0.00000001"),
        (beta, DAY + timedelta(days=1), "-7"),  # midnight: the next day
        (alpha, DAY + timedelta(days=1, hours=5), "3.3"),
    ]:
        make_closed_trade(bot, pnl_usd=Decimal(pnl), entry_time=DAY, exit_time=exit_)
    make_closed_trade(
        alpha, pnl_usd=Decimal("500"), entry_time=DAY, exit_time=DAY, source="backtest"
    )
    make_trade(beta, entry_time=DAY)


@pytest.mark.django_db
def test_each_day_is_the_fleets_sum_and_refreshes_with_the_other_views() -> None:
    views_refresh()  # empty: a transactional test elsewhere may have left rows in them
    assert rows() == []
    trades()
    assert rows() == []  # a materialized view: nothing until the refresh
    views_refresh()
    assert rows() == [
        (date(2026, 12, 5), Decimal("7.62345679")),
        (date(2026, 12, 6), Decimal("-3.7")),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_it_from_the_daily_view_as_it_stands() -> None:
    """On the schema before (analytics 0007) with trades, a refreshed daily view and a trade
    after that refresh: the new view holds the daily view's days, not the later trade's."""
    migrate([("analytics", "0007_snapshot_sums_wider")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [PORTFOLIO_DAILY_VIEW])
            assert cursor.fetchone() == (None,)
            trades()
            cursor.execute(f"REFRESH MATERIALIZED VIEW {DAILY_PERFORMANCE_VIEW}")
        gamma = make_bot("gamma", initial_capital_usd=Decimal("1"))
        make_closed_trade(gamma, pnl_usd=Decimal("99"), entry_time=DAY, exit_time=DAY)

        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        assert rows() == [
            (date(2026, 12, 5), Decimal("7.62345679")),
            (date(2026, 12, 6), Decimal("-3.7")),
        ]
    finally:  # leave the schema, and the views empty, as every other test expects them
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        call_command("flush", interactive=False, verbosity=0)
        views_refresh()
