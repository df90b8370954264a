"""The analytics schema: portfolio snapshots and two materialized views (read-only models).

The views are created with RunSQL (migrations 0002, then 0004); analytics/sql.py holds their SQL.
"""

from django.db import models

from trading.db import PctField, UsdField, schema_table
from trading.models import Bot


class PortfolioSnapshot(models.Model):
    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField(unique=True)
    total_equity_usd = UsdField()
    total_balance_usd = UsdField()
    unrealized_pnl_usd = UsdField(default=0)
    realized_pnl_today_usd = UsdField(default=0)
    gross_exposure_usd = UsdField(default=0)
    net_exposure_usd = UsdField(default=0)
    long_exposure_usd = UsdField(default=0)
    short_exposure_usd = UsdField(default=0)
    open_positions = models.PositiveIntegerField(default=0)
    active_bots = models.PositiveIntegerField(default=0)
    var_95_usd = UsdField(null=True, blank=True)
    var_99_usd = UsdField(null=True, blank=True)
    per_bot = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table("analytics", "portfolio_snapshots")
        ordering = ["-ts"]

    def __str__(self) -> str:
        return f"portfolio {self.ts:%Y-%m-%d %H:%M}"


class BotDailyPerformance(models.Model):
    """analytics.bot_daily_performance: closed, non-backtest trades per bot per UTC exit day."""

    pk = models.CompositePrimaryKey("bot", "day")
    bot = models.ForeignKey(Bot, on_delete=models.DO_NOTHING, related_name="+")
    day = models.DateField()
    trades = models.IntegerField()
    wins = models.IntegerField()
    losses = models.IntegerField()
    breakeven = models.IntegerField()
    gross_profit_usd = UsdField()
    gross_loss_usd = UsdField()
    net_pnl_usd = UsdField()
    fees_usd = UsdField()
    volume_usd = models.DecimalField(max_digits=40, decimal_places=10)
    best_trade_usd = UsdField()
    worst_trade_usd = UsdField()
    duration_s = models.DecimalField(max_digits=40, decimal_places=6)  # summed over the trades

    class Meta:
        managed = False
        db_table = schema_table("analytics", "bot_daily_performance")
        ordering = ["bot", "day"]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day}"


class BotPerformanceSummary(models.Model):
    """analytics.bot_performance_summary: every bot, all time (closed, non-backtest trades)."""

    bot = models.OneToOneField(Bot, on_delete=models.DO_NOTHING, primary_key=True, related_name="+")
    trades_closed = models.IntegerField()
    wins = models.IntegerField()
    losses = models.IntegerField()
    breakeven = models.IntegerField()
    win_rate = models.DecimalField(max_digits=40, decimal_places=20, null=True)
    gross_profit_usd = UsdField()
    gross_loss_usd = UsdField()
    net_pnl_usd = UsdField()
    profit_factor = models.DecimalField(max_digits=40, decimal_places=20, null=True)
    expectancy_usd = models.DecimalField(max_digits=40, decimal_places=20, null=True)
    avg_win_usd = models.DecimalField(max_digits=40, decimal_places=20, null=True)
    avg_loss_usd = models.DecimalField(max_digits=40, decimal_places=20, null=True)
    best_trade_usd = UsdField(null=True)
    worst_trade_usd = UsdField(null=True)
    avg_duration_s = models.DecimalField(max_digits=40, decimal_places=6, null=True)
    fees_usd = UsdField()
    volume_usd = models.DecimalField(max_digits=40, decimal_places=10)
    max_drawdown_usd = UsdField()
    max_drawdown_pct = PctField()
    first_trade_at = models.DateTimeField(null=True)
    last_trade_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = schema_table("analytics", "bot_performance_summary")
        ordering = ["bot"]

    def __str__(self) -> str:
        return f"{self.bot_id} summary"
