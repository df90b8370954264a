"""Read-only admin pages for what the bots record. The bot registry itself is botconfig's.

Every list is ordered by an indexed column, counts at most a capped number of rows, loads its
related rows in the same query and filters by typed values instead of DISTINCT lists.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from atb_site.admin_tools import (
    DateRangeFilter,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    TextInputFilter,
)
from trading.models import (
    AccountBalance,
    MarketData,
    Order,
    OrderFill,
    Position,
    RiskMetric,
    Signal,
    Trade,
)


@admin.register(Trade)
class TradeAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "bot",
        "trade_id",
        "symbol",
        "side",
        "status",
        "source",
        "quantity",
        "entry_price",
        "exit_price",
        "entry_time",
        "exit_time",
        "pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = (
        "bot",
        ("symbol", TextInputFilter),
        "status",
        "side",
        "source",
        ("entry_time", DateRangeFilter),
    )
    ordering = ("-entry_time", "-id")  # trades_entry_idx / trades_bot_entry_idx
    sortable_by = ("entry_time",)


class OrderFillInline(ReadOnlyTabularInline):
    model = OrderFill
    fields = ("fill_id", "quantity", "price", "fee", "fee_currency", "filled_at")


@admin.register(Order)
class OrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "bot",
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "status",
        "quantity",
        "filled_quantity",
        "price",
        "avg_fill_price",
        "created_at",
    )
    list_select_related = ("bot",)
    list_filter = (
        "bot",
        ("symbol", TextInputFilter),
        "status",
        "order_type",
        "side",
        ("created_at", DateRangeFilter),
    )
    ordering = ("-id",)  # the primary key: newest first without sorting the table
    sortable_by = ()
    inlines = (OrderFillInline,)


@admin.register(Position)
class PositionAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "bot",
        "symbol",
        "exchange",
        "side",
        "status",
        "quantity",
        "avg_entry_price",
        "current_price",
        "unrealized_pnl_usd",
        "realized_pnl_usd",
        "opened_at",
        "closed_at",
    )
    list_select_related = ("bot",)
    list_filter = (
        "bot",
        ("symbol", TextInputFilter),
        "status",
        "side",
        ("opened_at", DateRangeFilter),
    )
    ordering = ("-id",)
    sortable_by = ()


@admin.register(MarketData)
class MarketDataAdmin(ReadOnlyModelAdmin):
    list_display = (
        "symbol",
        "exchange",
        "timeframe",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
    )
    list_filter = (
        ("symbol", TextInputFilter),
        ("exchange", TextInputFilter),
        "timeframe",
        ("ts", DateRangeFilter),
    )
    sortable_by = ()

    def get_ordering(self, request: HttpRequest) -> Any:
        # Filtered by symbol, walk the candle index (symbol, exchange, timeframe, ts);
        # unfiltered, the primary key gives the newest rows without sorting the table.
        if request.GET.get("symbol", "").strip():
            return ("symbol", "exchange", "timeframe", "-ts")
        return ("-id",)


@admin.register(Signal)
class SignalAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "bot",
        "symbol",
        "signal_type",
        "direction",
        "strength",
        "price",
        "generated_at",
        "validated",
        "executed",
        "outcome",
        "outcome_pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = (
        "bot",
        ("symbol", TextInputFilter),
        "direction",
        "outcome",
        "validated",
        "executed",
        ("generated_at", DateRangeFilter),
    )
    ordering = ("-id",)
    sortable_by = ()


@admin.register(AccountBalance)
class AccountBalanceAdmin(ReadOnlyModelAdmin):
    list_display = (
        "ts",
        "bot",
        "snapshot_type",
        "balance_usd",
        "equity_usd",
        "margin_used_usd",
        "available_margin_usd",
        "unrealized_pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = ("bot", "snapshot_type", ("ts", DateRangeFilter))
    ordering = ("-id",)
    sortable_by = ()


@admin.register(RiskMetric)
class RiskMetricAdmin(ReadOnlyModelAdmin):
    list_display = (
        "date",
        "bot",
        "trades_closed",
        "wins",
        "losses",
        "win_rate",
        "net_pnl_usd",
        "profit_factor",
        "max_drawdown_pct",
        "sharpe_30d",
        "sortino_30d",
        "equity_close_usd",
    )
    list_select_related = ("bot",)
    list_filter = ("bot", ("date", DateRangeFilter))
    ordering = ("-date", "bot_id")  # one row per bot per day: small, and (bot, date) is unique
    sortable_by = ("date",)
