"""The analytics schema: portfolio snapshots, two materialized views (read-only models), and the
checkpoints of the bot summaries.

The views are created with RunSQL (migrations 0002, then 0004); analytics/sql.py holds their SQL.
"""

import json
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models.functions import Now

from trading.db import PctField, UsdField, UsdSumField, choices_check, schema_table
from trading.models import Bot


class PortfolioSnapshot(models.Model):
    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField(unique=True, help_text="The start of the 5-minute bucket.")
    taken_at = models.DateTimeField(
        db_default=Now(),
        help_text="When the figures were read: within the bucket, or later for a bucket a "
        "missed run left empty and a later run filled (with the figures of that later time).",
    )
    total_equity_usd = UsdSumField()
    total_balance_usd = UsdSumField()
    unrealized_pnl_usd = UsdSumField(default=0)
    realized_pnl_today_usd = UsdSumField(default=0)
    gross_exposure_usd = UsdSumField(default=0)
    net_exposure_usd = UsdSumField(default=0)
    long_exposure_usd = UsdSumField(default=0)
    short_exposure_usd = UsdSumField(default=0)
    open_positions = models.PositiveIntegerField(default=0)
    active_bots = models.PositiveIntegerField(default=0)
    var_95_usd = UsdSumField(null=True, blank=True)
    var_99_usd = UsdSumField(null=True, blank=True)
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


class ExactDecimalField(models.DecimalField):
    """NUMERIC without precision or scale: a number kept exactly as computed. Here, the shortest
    decimal that reads back (``::float8``) as the very float8 the summary statement added up:
    the schema stores no binary floating point, and nothing is lost either way."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 1000)  # nominal: the column has no typmod
        kwargs.setdefault("decimal_places", 500)
        super().__init__(**kwargs)

    def db_type(self, connection: Any) -> str:
        return "numeric"


def _sum_field(**kwargs: Any) -> models.DecimalField:
    """A sum of USD amounts (NUMERIC(20, 8) each): the same 8 places, room for many of them."""
    return models.DecimalField(max_digits=40, decimal_places=8, **kwargs)


class BotSummaryCheckpoint(models.Model):
    """The state of a bot's all-time summary over its closed, non-backtest trades that exited
    before ``cut`` (the start of a UTC day), as analytics.selectors.bots reads it: the summary is
    this state combined with the few trades that exited since, in one statement.

    Built from one snapshot of the trades, at their version ``trades_version``
    (analytics.bot_trade_versions), by analytics.services.summaries. It serves only while the
    versions row says no trade that exited before ``cut`` changed since it was built (the row's
    ``checkpoint_version`` and ``earliest_exit_touched``, kept by the trades' version trigger),
    and while the bot's initial capital is still ``initial_capital_usd``.

    Every column is what the summary statement computes over those trades, kept exactly: sums
    at their scale, the float8 sums of durations as avg() adds them (in exit order), and the
    daily returns one by one (both as the exact decimals of those float8 values), so that the
    combined figures equal the statement's to the digit.
    """

    bot = models.OneToOneField(Bot, on_delete=models.CASCADE, primary_key=True, related_name="+")
    cut = models.DateTimeField(help_text="Trades that exited before this (a UTC midnight).")
    trades_version = models.BigIntegerField(help_text="The bot's trades version it was built at.")
    initial_capital_usd = UsdField()
    built_at = models.DateTimeField()
    trades_closed = models.IntegerField()
    wins = models.IntegerField()
    losses = models.IntegerField()
    breakeven = models.IntegerField()
    win_pnl_usd = _sum_field(help_text="Sum of pnl_usd over the wins.")
    loss_pnl_usd = _sum_field(help_text="Sum of pnl_usd over the losses (not above 0).")
    net_pnl_usd = _sum_field()
    fees_usd = _sum_field()
    volume_usd = models.DecimalField(max_digits=60, decimal_places=20)  # quantity x entry_price
    best_trade_usd = UsdField(null=True)
    worst_trade_usd = UsdField(null=True)
    # float8 sums of exit_time - entry_time in seconds, added in (exit_time, id) order, as avg()
    # adds them (kept exactly: ExactDecimalField).
    duration_s_sum = ExactDecimalField()
    win_duration_s_sum = ExactDecimalField()
    loss_duration_s_sum = ExactDecimalField()
    first_trade_at = models.DateTimeField(null=True, help_text="The earliest entry_time.")
    last_trade_at = models.DateTimeField(null=True, help_text="The latest exit_time.")
    equity_usd = _sum_field(help_text="Realized equity after the last trade.")
    peak_usd = _sum_field(help_text="Running peak of the equity (from initial capital).")
    peak_at = models.DateTimeField(null=True, help_text="Last exit at which equity was the peak.")
    max_drawdown_usd = _sum_field()
    # The deepest point by percentage (ties: the earliest), and the peak it fell from.
    trough_trade_id = models.BigIntegerField(null=True)
    trough_at = models.DateTimeField(null=True)
    trough_peak_usd = _sum_field(null=True)
    trough_equity_usd = _sum_field(null=True)
    trough_peak_at = models.DateTimeField(null=True)
    # r (float8, kept exactly) of every UTC day from the first trade's entry day to the last
    # trade's exit day; NULL where the equity the day started from was 0.
    daily_returns = ArrayField(ExactDecimalField(null=True), default=list)

    class Meta:
        db_table = schema_table("analytics", "bot_summary_checkpoints")

    def __str__(self) -> str:
        return f"{self.bot_id} summary before {self.cut:%Y-%m-%d}"


class ReportPeriod(models.TextChoices):
    DAILY = "daily"  # one UTC day
    WEEKLY = "weekly"  # one ISO week, Monday 00:00 UTC to the next


class ReportRecipientList(models.Model):
    """Who gets the scheduled report of a period (configured in the admin)."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100, unique=True)
    period = models.CharField(max_length=16, choices=ReportPeriod.choices)
    recipients = models.TextField(help_text="E-mail addresses, comma separated.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = schema_table("analytics", "report_recipient_lists")
        ordering = ["name"]
        constraints = [choices_check("report_recipient_lists", "period", ReportPeriod)]

    def __str__(self) -> str:
        return f"{self.name} ({self.period})"

    @property
    def addresses(self) -> list[str]:
        return [a.strip() for a in self.recipients.replace("\n", ",").split(",") if a.strip()]

    def clean(self) -> None:
        if not self.addresses:
            raise ValidationError({"recipients": "Give at least one e-mail address."})
        for address in self.addresses:
            try:
                validate_email(address)
            except ValidationError as exc:
                raise ValidationError(
                    {"recipients": f"{address!r} is not an e-mail address."}
                ) from exc


class Report(models.Model):
    """One period's report for one recipient list, as built and sent: unique per (list, period,
    start), so a second run of the same period (beat twice, by hand) finds it and sends nothing."""

    id = models.BigAutoField(primary_key=True)
    recipient_list = models.ForeignKey(
        ReportRecipientList, on_delete=models.PROTECT, related_name="reports"
    )
    period = models.CharField(max_length=16, choices=ReportPeriod.choices)
    start = models.DateTimeField(help_text="The period's start (UTC, included).")
    end = models.DateTimeField(help_text="The period's end (UTC, excluded).")
    generated_at = models.DateTimeField()
    # The API's JSON text, kept as text: jsonb would rewrite a float such as 1.38e+27 as the
    # integer 1383957464737112800000000000, which no longer equals the API's answer.
    figures_json = models.TextField(help_text="The API's JSON for the period (see DESIGN.md).")
    html = models.TextField()
    trades_csv = models.TextField(help_text="The trades closed in the period, as the API's CSV.")
    recipients = models.TextField(help_text="The addresses it was sent to.")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("analytics", "reports")
        ordering = ["-start", "-id"]
        constraints = [
            choices_check("reports", "period", ReportPeriod),
            models.UniqueConstraint(
                fields=["recipient_list", "period", "start"], name="reports_list_period_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period} report of {self.start:%Y-%m-%d} for {self.recipient_list_id}"

    @property
    def figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = json.loads(self.figures_json)
        return figures
