"""Input (query string) and output shapes of the analytics endpoints.

Money is written as decimal strings, ratios as JSON numbers rounded to 6 places (METRICS.md
"Numbers"), times ISO-8601 in UTC. Names are unique and say their direction, so the OpenAPI
components never collide.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.models import PortfolioSnapshot
from analytics.selectors.equity import MIN_POINTS
from analytics.selectors.periods import BREAKDOWNS, PERIODS
from trading.api.filters import AwareDateTimeField
from trading.api.serializers import OutputSerializer
from trading.models import BotMode, BotStatus

_CENT_MILLIONTH = Decimal("1e-8")


def money(**kwargs: Any) -> serializers.DecimalField:
    """USD as the widest column holds it (NUMERIC(38, 8), sums): anything stored renders."""
    return serializers.DecimalField(max_digits=38, decimal_places=8, **kwargs)


def ratio(help_text: str, **kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(help_text=help_text, **kwargs)


# --- Input --------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeInputField(serializers.Field):
    """ISO-8601 with a UTC offset (``2026-01-05T12:00:00Z``); a naive time is refused."""

    def to_internal_value(self, data: Any) -> datetime | None:
        try:
            return AwareDateTimeField(required=False).clean(data)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc

    def to_representation(self, value: Any) -> Any:
        return value


class ExitRangeInputSerializer(serializers.Serializer):
    since = AwareDateTimeInputField(
        required=False, help_text="Only trades that closed at or after this moment."
    )
    until = AwareDateTimeInputField(
        required=False, help_text="Only trades that closed before this moment."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": "must be later than since"})
        return attrs


class BotAnalyticsInputSerializer(ExitRangeInputSerializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, not Field.source
        choices=["backtest"],
        required=False,
        help_text="`backtest` includes backtested trades (left out by default).",
    )


def _runs_field(side: str = "") -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text=f"{side}Run ids (repeat the parameter for several): the trades written in them.",
    )


def _config_version_field(side: str = "") -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1,
        required=False,
        help_text=f"{side}A configuration version: the trades entered while it was in force.",
    )


class BotSummaryInputSerializer(BotAnalyticsInputSerializer):
    run = _runs_field()
    config_version = _config_version_field()


class BotSummaryCompareInputSerializer(serializers.Serializer):
    a_run = _runs_field("Side a. ")
    a_config_version = _config_version_field("Side a. ")
    b_run = _runs_field("Side b. ")
    b_config_version = _config_version_field("Side b. ")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, not Field.source
        choices=["backtest"],
        required=False,
        help_text="`backtest` includes backtested trades in a configuration version's slice.",
    )


def period_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=list(PERIODS),
        default="day",
        help_text="UTC day, ISO week (Monday first) or calendar month of the exit.",
    )


class BotPerformanceInputSerializer(BotAnalyticsInputSerializer):
    period = period_field()


class PortfolioPerformanceInputSerializer(ExitRangeInputSerializer):
    period = period_field()


class BotEquityInputSerializer(BotAnalyticsInputSerializer):
    max_points = serializers.IntegerField(
        required=False,
        min_value=MIN_POINTS,
        help_text=(
            "Down-sample each series longer than this for a chart: its time span is cut into "
            "equal parts, each keeping only its first and last points, its lowest and highest "
            "equity and (realized curve) its deepest drawdown; the maximum drawdown's peak and "
            "trough are always kept. Every point returned is one of the series' own. Left "
            "out: every point."
        ),
    )


class BotBreakdownInputSerializer(BotAnalyticsInputSerializer):
    by = serializers.ChoiceField(
        choices=list(BREAKDOWNS), default="exit_reason", help_text="The column to group by."
    )


# --- Output: one bot ----------------------------------------------------------------------------


class BotSummaryOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    include_backtest = serializers.BooleanField()
    initial_capital_usd = money()
    equity_usd = money(help_text="Realized equity at the end: start + net_pnl_usd.")
    trades_closed = serializers.IntegerField()
    trades_open = serializers.IntegerField(help_text="Trades open now.")
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    breakeven = serializers.IntegerField()
    win_rate = ratio("wins / trades_closed (0 to 1).", allow_null=True)
    gross_profit_usd = money()
    gross_loss_usd = money(help_text="A magnitude (non-negative).")
    net_pnl_usd = money()
    profit_factor = ratio("gross profit / gross loss; null without losses.", allow_null=True)
    expectancy_usd = money(allow_null=True)
    expectancy_ratio = ratio("(1 + avg win / avg loss) x win rate - 1.", allow_null=True)
    avg_win_usd = money(allow_null=True)
    avg_loss_usd = money(allow_null=True, help_text="A magnitude (non-negative).")
    best_trade_usd = money(allow_null=True)
    worst_trade_usd = money(allow_null=True)
    avg_duration_s = ratio("Mean of exit - entry, in seconds.", allow_null=True)
    avg_win_duration_s = ratio("The same over wins.", allow_null=True)
    avg_loss_duration_s = ratio("The same over losses.", allow_null=True)
    fees_usd = money()
    volume_usd = money(help_text="Sum of quantity x entry price.")
    max_drawdown_usd = money()
    max_drawdown_pct = ratio("Largest (peak - E) / peak x 100.")
    max_drawdown_peak_at = serializers.DateTimeField(allow_null=True)
    max_drawdown_trough_at = serializers.DateTimeField(allow_null=True)
    sharpe = ratio("Daily returns, sample stdev, x sqrt(365).", allow_null=True)
    sortino = ratio("As empyrical: downside deviation over all days.", allow_null=True)
    cagr = ratio("(E_end / E_start) ^ (365 / days) - 1.", allow_null=True)
    calmar = ratio("cagr / (max_drawdown_pct / 100).", allow_null=True)
    days = ratio("D: days from the first entry to the last exit, at least 1.", allow_null=True)
    first_trade_at = serializers.DateTimeField(allow_null=True)
    last_trade_at = serializers.DateTimeField(allow_null=True)
    reported_equity_usd = money(allow_null=True, help_text="The last account_balance row's.")
    reported_equity_at = serializers.DateTimeField(allow_null=True)


class BotSliceSummaryOutputSerializer(BotSummaryOutputSerializer):
    """The summary of a slice: runs, or a configuration version (given only for one)."""

    run_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    config_version = serializers.IntegerField(allow_null=True, required=False)
    config_effective_from = serializers.DateTimeField(allow_null=True, required=False)
    config_effective_to = serializers.DateTimeField(allow_null=True, required=False)


class BotSummaryCompareOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    a = BotSliceSummaryOutputSerializer()
    b = BotSliceSummaryOutputSerializer()
    differences = serializers.DictField(
        help_text="b - a for every numeric figure (money as decimal strings, exact; ratios "
        "as numbers; null where either side is null)."
    )

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        data["differences"] = {
            name: (f"{value.quantize(_CENT_MILLIONTH):f}" if isinstance(value, Decimal) else value)
            for name, value in instance["differences"].items()
        }
        return data


class EquityPointOutputSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    equity_usd = money()
    peak_usd = money()
    drawdown_usd = money()
    drawdown_pct = serializers.FloatField()


class ReportedEquityOutputSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    equity_usd = money()


class BotEquityOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    initial_capital_usd = money()
    points_total = serializers.IntegerField(help_text="Closed trades: the points of the curve.")
    points = EquityPointOutputSerializer(
        many=True, help_text="One per closed trade, exit order (some of them with max_points)."
    )
    reported_total = serializers.IntegerField(help_text="account_balance rows of the period.")
    reported = ReportedEquityOutputSerializer(
        many=True, help_text="account_balance, oldest first (some of them with max_points)."
    )


class PerformanceRowOutputSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    trades = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    net_pnl_usd = money()
    fees_usd = money()
    starting_equity_usd = money()
    return_pct = serializers.FloatField(allow_null=True)


class BotPerformanceOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    period = serializers.ChoiceField(choices=list(PERIODS))
    rows = PerformanceRowOutputSerializer(many=True)


class BreakdownRowOutputSerializer(serializers.Serializer):
    key = serializers.CharField(allow_blank=True)
    trades = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.FloatField()
    net_pnl_usd = money()
    avg_pnl_usd = money()
    avg_duration_s = serializers.FloatField()


class BotBreakdownOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    by = serializers.ChoiceField(choices=list(BREAKDOWNS))
    rows = BreakdownRowOutputSerializer(many=True)


# --- Output: the portfolio ----------------------------------------------------------------------


class PortfolioBotOutputSerializer(serializers.Serializer):
    bot_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=BotStatus.values)
    mode = serializers.ChoiceField(choices=BotMode.values)
    equity_usd = money()
    equity_source = serializers.ChoiceField(choices=["reported", "realized"])
    pnl_today_usd = money()
    open_positions = serializers.IntegerField()
    exposure_usd = money(help_text="Long + short exposure of the bot's open positions.")
    last_heartbeat_at = serializers.DateTimeField(allow_null=True)
    heartbeat_age_s = serializers.FloatField(allow_null=True)


class PortfolioSummaryOutputSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    total_equity_usd = money()
    total_balance_usd = money()
    unrealized_pnl_usd = money()
    realized_pnl_today_usd = money()
    long_exposure_usd = money()
    short_exposure_usd = money()
    gross_exposure_usd = money()
    net_exposure_usd = money()
    open_positions = serializers.IntegerField()
    active_bots = serializers.IntegerField()
    var_95_usd = money(
        allow_null=True,
        help_text="Null with fewer than 20 days of returns, or at 10^30 or more (a return "
        "against a realized equity near zero).",
    )
    var_99_usd = money(allow_null=True)
    var_days = serializers.IntegerField(help_text="Daily returns in the trailing 90-day window.")
    bots = PortfolioBotOutputSerializer(many=True)


class PortfolioPerformanceRowOutputSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    trades = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    net_pnl_usd = money()
    fees_usd = money()
    starting_equity_usd = money(
        help_text="Every bot's initial capital plus every pnl closed before the period starts."
    )
    equity_close_usd = money(help_text="starting_equity_usd + net_pnl_usd.")
    return_pct = serializers.FloatField(allow_null=True)


class PortfolioPerformanceOutputSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    rows = PortfolioPerformanceRowOutputSerializer(many=True)


class PortfolioSnapshotOutputSerializer(OutputSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = (
            "id",
            "ts",
            "total_equity_usd",
            "total_balance_usd",
            "unrealized_pnl_usd",
            "realized_pnl_today_usd",
            "gross_exposure_usd",
            "net_exposure_usd",
            "long_exposure_usd",
            "short_exposure_usd",
            "open_positions",
            "active_bots",
            "var_95_usd",
            "var_99_usd",
            "per_bot",
        )
        read_only_fields = fields
