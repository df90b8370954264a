"""Read-only admin pages for portfolio snapshots and the all-time performance summary.

``bot_daily_performance`` has a composite primary key, which Django's admin cannot show.
"""

from django.contrib import admin

from analytics.models import BotPerformanceSummary, PortfolioSnapshot
from atb_site.admin_tools import DateRangeFilter, ReadOnlyModelAdmin


@admin.register(PortfolioSnapshot)
class PortfolioSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = (
        "ts",
        "taken_at",
        "total_equity_usd",
        "total_balance_usd",
        "unrealized_pnl_usd",
        "realized_pnl_today_usd",
        "gross_exposure_usd",
        "net_exposure_usd",
        "open_positions",
        "active_bots",
        "var_95_usd",
        "var_99_usd",
    )
    list_filter = (("ts", DateRangeFilter),)
    ordering = ("-ts",)  # unique, so indexed
    sortable_by = ("ts",)


@admin.register(BotPerformanceSummary)
class BotPerformanceSummaryAdmin(ReadOnlyModelAdmin):
    """The materialized view as of its last refresh: one row per bot."""

    list_display = (
        "bot",
        "trades_closed",
        "wins",
        "losses",
        "win_rate",
        "net_pnl_usd",
        "profit_factor",
        "expectancy_usd",
        "max_drawdown_pct",
        "fees_usd",
        "last_trade_at",
    )
    list_select_related = ("bot",)
    ordering = ("bot_id",)
