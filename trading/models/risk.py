"""Risk metrics per bot and the backlog of bots whose metrics need a rollup."""

from django.db import models
from django.db.models import F, Q

from trading.db import (
    PctField,
    UsdField,
    UsdSumField,
    schema_table,
)
from trading.models.bots import Bot
from trading.models.choices import SCHEMA


class RiskMetric(models.Model):
    """One row per bot per UTC day, rolled up from trades and balances (METRICS.md)."""

    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, db_index=False, related_name="risk_metrics"
    )
    date = models.DateField()
    trades_closed = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    win_rate = PctField(null=True, blank=True)
    gross_profit_usd = UsdSumField(default=0)
    gross_loss_usd = UsdSumField(default=0)
    net_pnl_usd = UsdSumField(default=0)
    fees_usd = UsdSumField(default=0)
    profit_factor = PctField(null=True, blank=True)
    expectancy_usd = UsdField(null=True, blank=True)
    max_drawdown_pct = PctField(null=True, blank=True)
    sharpe_30d = PctField(null=True, blank=True)
    sortino_30d = PctField(null=True, blank=True)
    exposure_usd = UsdSumField(default=0)
    equity_close_usd = UsdSumField(null=True, blank=True)
    equity_peak_usd = UsdSumField(
        null=True,
        blank=True,
        help_text="Running peak of the realized equity curve up to the end of the day; the next "
        "day's rollup continues the drawdown from it instead of rereading all history.",
    )
    computed_at = models.DateTimeField()

    class Meta:
        db_table = schema_table(SCHEMA, "risk_metrics")
        ordering = ["-date", "bot"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "date"], name="risk_metrics_bot_date_uniq"),
            models.CheckConstraint(
                condition=Q(wins__lte=F("trades_closed")) & Q(losses__lte=F("trades_closed")),
                name="risk_metrics_counts_consistent",
            ),
            models.CheckConstraint(
                condition=Q(gross_loss_usd__gte=0) & Q(gross_profit_usd__gte=0),
                name="risk_metrics_gross_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(win_rate__isnull=True) | Q(win_rate__gte=0, win_rate__lte=1),
                name="risk_metrics_win_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.date}"


class RiskMetricsBacklog(models.Model):
    """A bot's risk_metrics rows that are out of date from ``since`` on, because trades were
    written for a day the scheduled rollup no longer redoes (before yesterday): a late trade, a
    past trade corrected, an import. Written in the same statement or transaction as the trades,
    so it cannot be lost with a queue message; the analytics rollup redoes the days and deletes
    the row in one transaction."""

    bot = models.OneToOneField(
        Bot, on_delete=models.CASCADE, primary_key=True, related_name="risk_metrics_backlog"
    )
    since = models.DateField(help_text="The first UTC day whose row must be rolled up again.")
    marked_at = models.DateTimeField(help_text="When trades last moved ``since`` or set it.")

    class Meta:
        db_table = schema_table(SCHEMA, "risk_metrics_backlog")
        verbose_name_plural = "risk metrics backlog"

    def __str__(self) -> str:
        return f"{self.bot_id} from {self.since}"
