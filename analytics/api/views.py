"""GET the analytics of API.md: one bot's summary, equity curve, periods and breakdowns (a bot's
token: its own bot only, another bot's id is a 404; staff: any bot), and the portfolio's
summary, performance per period and snapshots (staff only). Views parse the query string, call
one selector, serialize.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import django_filters as filters  # type: ignore[import-untyped, unused-ignore]
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django_filters.rest_framework import DjangoFilterBackend  # type: ignore[import-untyped, unused-ignore]
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.serializers import (
    BotBreakdownInputSerializer,
    BotBreakdownOutputSerializer,
    BotEquityInputSerializer,
    BotEquityOutputSerializer,
    BotPerformanceInputSerializer,
    BotPerformanceOutputSerializer,
    BotSliceSummaryOutputSerializer,
    BotSummaryCompareInputSerializer,
    BotSummaryCompareOutputSerializer,
    BotSummaryInputSerializer,
    BotSummaryOutputSerializer,
    BreakdownRowOutputSerializer,
    PerformanceRowOutputSerializer,
    PortfolioPerformanceInputSerializer,
    PortfolioPerformanceOutputSerializer,
    PortfolioPerformanceRowOutputSerializer,
    PortfolioSnapshotOutputSerializer,
    PortfolioSummaryOutputSerializer,
)
from analytics.models import PortfolioSnapshot
from analytics.selectors.reconcile import ReconcileRefused, runs_reconcile
from analytics.selectors.runs import Slice, SliceRefused, bot_slice_summary, bot_slices_compare
from trading.api.auth import calling_bot
from trading.api.errors import FieldError, InvalidInput
from trading.api.exports import Exportable, rows_response, serializer_columns
from trading.api.filters import since_filter, until_filter
from trading.api.pagination import KeysetCursorPagination
from trading.api.permissions import IsBotOrStaff, IsStaff
from trading.api.replica import StaffReadsFromReplica
from trading.models import Bot

WHO_READS = (
    "A bot's token reads only its own bot (another bot's id is a 404); staff read any bot. "
    "Closed trades only; backtests are left out unless `source=backtest`. "
    "Figures: METRICS.md. Money: decimal strings; ratios: numbers rounded to 6 places."
)
# ?format=csv|parquet: the rows of the answer, typed by the row serializer's fields.
PERFORMANCE_COLUMNS = serializer_columns(PerformanceRowOutputSerializer)
BREAKDOWN_COLUMNS = serializer_columns(BreakdownRowOutputSerializer)
PORTFOLIO_PERFORMANCE_COLUMNS = serializer_columns(PortfolioPerformanceRowOutputSerializer)
NOT_FOUND = OpenApiResponse(description="No such bot, or another bot's (for a bot's token).")


def query_input(serializer_class: type[serializers.Serializer], request: Request) -> Any:
    """The query string, validated: a bad parameter is a 400 naming it."""
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        raise InvalidInput(
            [
                FieldError(field, " ".join(str(m) for m in messages))
                for field, messages in serializer.errors.items()
            ]
        )
    return serializer.validated_data


class BotAnalyticsView(StaffReadsFromReplica):
    permission_classes = [IsBotOrStaff]

    def target_bot(self, bot_id: str) -> Bot:
        """The bot named in the path, if the caller may read it."""
        caller = calling_bot(self.request)
        if caller is not None:
            if caller.bot_id != bot_id:
                raise NotFound("No such bot.")
            return caller
        bot = Bot.objects.filter(pk=bot_id).first()
        if bot is None:
            raise NotFound("No such bot.")
        return bot

    def scope(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "since": data.get("since"),
            "until": data.get("until"),
            "include_backtest": data.get("source") == "backtest",
        }


def _slice_refused(exc: SliceRefused) -> InvalidInput:
    return InvalidInput([FieldError(exc.field, exc.reason)])


class BotSummaryView(BotAnalyticsView):
    @extend_schema(
        operation_id="bot_summary",
        summary="Every figure of METRICS.md for one bot (or some of its runs, or a "
        "configuration version)",
        description=WHO_READS
        + " With `run` (repeatable): only the trades written in those runs, a backtest's "
        "included. With `config_version`: only the trades entered while it was in force. "
        "Either way the curve starts from the bot's initial capital.",
        parameters=[BotSummaryInputSerializer],
        responses={200: BotSliceSummaryOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> Response:
        data = query_input(BotSummaryInputSerializer, request)
        bot = self.target_bot(bot_id)
        runs, version = tuple(data.get("run") or ()), data.get("config_version")
        if not runs and version is None:
            summary = selectors.bot_summary(bot=bot, **self.scope(data))
            return Response(BotSummaryOutputSerializer(summary).data)
        try:
            summary = bot_slice_summary(
                bot=bot, part=Slice(run_ids=runs, config_version=version), **self.scope(data)
            )
        except SliceRefused as exc:
            raise _slice_refused(exc) from exc
        return Response(BotSliceSummaryOutputSerializer(summary).data)


class BotSummaryCompareView(BotAnalyticsView):
    @extend_schema(
        operation_id="bot_summary_compare",
        summary="Two slices of one bot side by side (runs or configuration versions), with b - a",
        description=WHO_READS,
        parameters=[BotSummaryCompareInputSerializer],
        responses={200: BotSummaryCompareOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> Response:
        bot = self.target_bot(bot_id)  # another bot's: 404 before any 400
        data = query_input(BotSummaryCompareInputSerializer, request)
        sides = []
        for side in ("a", "b"):
            runs = tuple(data.get(f"{side}_run") or ())
            version = data.get(f"{side}_config_version")
            if not runs and version is None:
                raise InvalidInput(
                    [FieldError(f"{side}_run", f"{side}_run or {side}_config_version is required")]
                )
            sides.append(
                Slice(
                    run_ids=runs,
                    config_version=version,
                    run_field=f"{side}_run",
                    config_field=f"{side}_config_version",
                )
            )
        try:
            compared = bot_slices_compare(
                bot=bot,
                a=sides[0],
                b=sides[1],
                include_backtest=data.get("source") == "backtest",
            )
        except SliceRefused as exc:
            raise _slice_refused(exc) from exc
        return Response(BotSummaryCompareOutputSerializer(compared).data)


class BotReconcileInputSerializer(serializers.Serializer):
    live_run = serializers.IntegerField(min_value=1, help_text="The live (or dry-run) run.")
    backtest_run = serializers.IntegerField(min_value=1, help_text="The backtest run.")
    tolerance_s = serializers.IntegerField(
        min_value=0,
        max_value=7 * 86400,
        default=300,
        help_text="The most two matched trades' entries may be apart, in seconds.",
    )


class BotReconcileView(BotAnalyticsView):
    @extend_schema(
        operation_id="bot_reconcile",
        summary="A live run against a backtest run: matched trades, slippage, the P&L "
        "difference as the sum of its parts",
        description=WHO_READS
        + " Trades match on symbol and side with entries at most tolerance_s apart, one to "
        "one, closest first. difference_usd = matched_usd + live_only_usd + backtest_only_usd, "
        "and matched_usd = the sum of matched_parts_usd (entry, exit, size, fee, other), "
        "each to the last digit.",
        parameters=[BotReconcileInputSerializer],
        responses={200: OpenApiResponse(description="The reconciliation."), 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> Response:
        bot = self.target_bot(bot_id)  # another bot's: 404 before any 400
        data = query_input(BotReconcileInputSerializer, request)
        try:
            result = runs_reconcile(
                bot=bot,
                live_run_id=data["live_run"],
                backtest_run_id=data["backtest_run"],
                tolerance=timedelta(seconds=data["tolerance_s"]),
            )
        except ReconcileRefused as exc:
            raise InvalidInput([FieldError(exc.field, exc.reason)]) from exc
        return Response(_money_as_text(result))


def _money_as_text(value: Any) -> Any:
    """Decimals as their exact text (money is never a float on the wire)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {k: _money_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_money_as_text(v) for v in value]
    return value


class BotEquityView(BotAnalyticsView):
    @extend_schema(
        operation_id="bot_equity",
        summary="One bot's realized equity curve, and the equity it reported",
        description=WHO_READS,
        parameters=[BotEquityInputSerializer],
        responses={200: BotEquityOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> Response:
        data = query_input(BotEquityInputSerializer, request)
        curve = selectors.bot_equity_curve(
            bot=self.target_bot(bot_id), max_points=data.get("max_points"), **self.scope(data)
        )
        return Response(BotEquityOutputSerializer(curve).data)


class BotPerformanceView(Exportable, BotAnalyticsView):
    @extend_schema(
        operation_id="bot_performance",
        summary="One bot's closed trades per day, ISO week or month, oldest first",
        description=WHO_READS,
        parameters=[BotPerformanceInputSerializer],
        responses={200: BotPerformanceOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> HttpResponseBase:
        data = query_input(BotPerformanceInputSerializer, request)
        bot = self.target_bot(bot_id)
        rows = selectors.bot_performance(bot=bot, period=data["period"], **self.scope(data))
        fmt = self.export_format(request)
        if fmt is not None:
            name = f"{bot.bot_id}-performance-{data['period']}"
            return rows_response(rows, PERFORMANCE_COLUMNS, fmt=fmt, name=name)
        body = {"bot_id": bot.bot_id, "period": data["period"], "rows": rows}
        return Response(BotPerformanceOutputSerializer(body).data)


class BotBreakdownView(Exportable, BotAnalyticsView):
    @extend_schema(
        operation_id="bot_breakdown",
        summary="One bot's closed trades per exit reason or entry tag",
        description=WHO_READS,
        parameters=[BotBreakdownInputSerializer],
        responses={200: BotBreakdownOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, bot_id: str) -> HttpResponseBase:
        data = query_input(BotBreakdownInputSerializer, request)
        bot = self.target_bot(bot_id)
        rows = selectors.bot_breakdown(bot=bot, by=data["by"], **self.scope(data))
        fmt = self.export_format(request)
        if fmt is not None:
            name = f"{bot.bot_id}-breakdown-{data['by']}"
            return rows_response(rows, BREAKDOWN_COLUMNS, fmt=fmt, name=name)
        body = {"bot_id": bot.bot_id, "by": data["by"], "rows": rows}
        return Response(BotBreakdownOutputSerializer(body).data)


class PortfolioSummaryView(StaffReadsFromReplica):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="portfolio_summary",
        summary="Every bot together: equity, exposure, VaR, and one row per bot",
        description="Staff only. Figures: METRICS.md (Portfolio figures).",
        responses={200: PortfolioSummaryOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(PortfolioSummaryOutputSerializer(selectors.portfolio_summary()).data)


class PortfolioPerformanceView(Exportable, StaffReadsFromReplica):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="portfolio_performance",
        summary="Every bot's closed trades per day, ISO week or month, oldest first",
        description=(
            "Staff only. The sums over every bot of bots/{bot_id}/performance/ (backtests left "
            "out), with the portfolio's realized equity at each period's start and close: every "
            "bot's initial capital plus every pnl closed before. Figures: METRICS.md."
        ),
        parameters=[PortfolioPerformanceInputSerializer],
        responses={200: PortfolioPerformanceOutputSerializer},
    )
    def get(self, request: Request) -> HttpResponseBase:
        data = query_input(PortfolioPerformanceInputSerializer, request)
        rows = selectors.portfolio_performance(
            period=data["period"], since=data.get("since"), until=data.get("until")
        )
        fmt = self.export_format(request)
        if fmt is not None:
            name = f"portfolio-performance-{data['period']}"
            return rows_response(rows, PORTFOLIO_PERFORMANCE_COLUMNS, fmt=fmt, name=name)
        body = {"period": data["period"], "rows": rows}
        return Response(PortfolioPerformanceOutputSerializer(body).data)


class PortfolioSnapshotFilterSet(filters.FilterSet):
    since = since_filter("ts")
    until = until_filter("ts")

    class Meta:
        model = PortfolioSnapshot
        fields: list[str] = []


@extend_schema(
    summary="List portfolio snapshots, newest first",
    description="Staff only. Follow `next` for older rows.",
)
class PortfolioSnapshotListView(StaffReadsFromReplica, generics.ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = PortfolioSnapshotOutputSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = PortfolioSnapshotFilterSet
    pagination_class = KeysetCursorPagination
    ordering = ("-ts", "-id")  # the unique index on ts

    def get_queryset(self) -> QuerySet[PortfolioSnapshot]:
        return selectors.portfolio_snapshot_list()
