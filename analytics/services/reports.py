"""Scheduled reports (issue 17, item 5): a period's figures, built by the selectors the API uses
and written as the API writes them, stored, and e-mailed to each active recipient list of the
period with the period's trades attached as CSV.

Idempotent per (recipient list, period, start): the report row is created once (its unique key)
and locked while it is sent; a second run of the period finds ``sent_at`` set and sends nothing.
A run killed after the SMTP server accepted the message but before its commit sends it again on
the next run (at least once, as any mail that is sent and then recorded).
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from analytics import selectors
from analytics.api.serializers import (
    BotSummaryOutputSerializer,
    PortfolioPerformanceOutputSerializer,
)
from analytics.models import Report, ReportPeriod, ReportRecipientList
from audit.models import RiskEvent, SystemEvent
from audit.selectors import DATA_QUALITY_COMPONENT, DATA_QUALITY_RUN
from trading.api.serializers import TradeOutputSerializer
from trading.models import Bot, Trade, TradeSource, TradeStatus
from trading.selectors.exports import export_columns, export_csv_chunks

# The API's period of each report period (portfolio/performance/?period=).
API_PERIOD = {ReportPeriod.DAILY: "day", ReportPeriod.WEEKLY: "week"}
TRADE_ORDERING = ("exit_time", "id")


@dataclass(frozen=True)
class Bounds:
    period: str
    start: datetime  # included
    end: datetime  # excluded

    @property
    def label(self) -> str:
        if self.period == ReportPeriod.WEEKLY:
            year, week, _ = self.start.date().isocalendar()
            return f"week {year}-W{week:02d}"
        return f"{self.start:%Y-%m-%d}"


def period_bounds(period: str, day: date) -> Bounds:
    """The UTC day ``day``, or the ISO week (Monday 00:00 UTC to the next) that contains it."""
    if period not in API_PERIOD:
        raise ValueError(f"period must be one of {', '.join(API_PERIOD)}, not {period!r}")
    first = day if period == ReportPeriod.DAILY else day - timedelta(days=day.weekday())
    start = datetime.combine(first, time(), tzinfo=UTC)
    length = timedelta(days=1 if period == ReportPeriod.DAILY else 7)
    return Bounds(period, start, start + length)


def last_complete_period(period: str, now: datetime) -> Bounds:
    """The period that ended last before ``now``: yesterday, or last ISO week."""
    today = now.astimezone(UTC).date()
    return period_bounds(period, today - timedelta(days=1 if period == ReportPeriod.DAILY else 7))


def _as_api_json(data: Any) -> Any:
    """What the API's renderer writes for ``data``, read back: the exact JSON of the answer."""
    return json.loads(JSONRenderer().render(data))


def _events(bounds: Bounds) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    risk = RiskEvent.objects.filter(ts__gte=bounds.start, ts__lt=bounds.end).order_by("ts", "id")
    risk_rows = [
        {
            "id": e.id,
            "ts": e.ts,
            "bot_id": e.bot_id,
            "event_type": e.event_type,
            "severity": e.severity,
            "limit_value": e.limit_value,
            "actual_value": e.actual_value,
            "action_taken": e.action_taken,
            "resolved": e.resolved,
        }
        for e in risk
    ]
    findings = (
        SystemEvent.objects.filter(
            component=DATA_QUALITY_COMPONENT, ts__gte=bounds.start, ts__lt=bounds.end
        )
        .exclude(event_type=DATA_QUALITY_RUN)  # the check's run, not a finding
        .order_by("ts", "id")
    )
    finding_rows = [
        {
            "id": e.id,
            "ts": e.ts,
            "bot_id": e.bot_id,
            "event_type": e.event_type,
            "severity": e.severity,
            "message": e.message,
        }
        for e in findings
    ]
    return risk_rows, finding_rows


def period_trades(bounds: Bounds) -> Any:
    """The trades that closed in the period, backtests left out (as the figures count them)."""
    return Trade.objects.filter(
        status=TradeStatus.CLOSED, exit_time__gte=bounds.start, exit_time__lt=bounds.end
    ).exclude(source=TradeSource.BACKTEST)


def trades_csv(bounds: Bounds) -> str:
    """The period's trades with the columns of GET trades/?format=csv (header first), in exit
    order: the export's own COPY (trading.selectors.exports)."""
    fields = TradeOutputSerializer.Meta.fields
    columns = export_columns(Trade, fields)
    body = b"".join(export_csv_chunks(period_trades(bounds), columns, ordering=TRADE_ORDERING))
    return ",".join(fields) + "\n" + body.decode()


def report_figures(bounds: Bounds) -> dict[str, Any]:
    """The period's figures as the API gives them for since=start, until=end:

    - ``portfolio``: GET portfolio/performance/?period=day|week&since&until;
    - ``bots``: [GET bots/{bot_id}/summary/?since&until] of every bot with a trade closed in
      the period, by bot_id (net P&L, maximum drawdown, trade count among them);
    - ``risk_events`` and ``data_quality``: the audit rows with ts in the period.
    """
    api_period = API_PERIOD[ReportPeriod(bounds.period)]
    rows = selectors.portfolio_performance(period=api_period, since=bounds.start, until=bounds.end)
    portfolio = PortfolioPerformanceOutputSerializer({"period": api_period, "rows": rows}).data
    bot_ids = period_trades(bounds).values_list("bot_id", flat=True).distinct().order_by("bot_id")
    bots = []  # a list: jsonb does not keep an object's key order
    for bot in Bot.objects.filter(bot_id__in=list(bot_ids)).order_by("bot_id"):
        summary = selectors.bot_summary(bot=bot, since=bounds.start, until=bounds.end)
        bots.append(BotSummaryOutputSerializer(summary).data)
    risk_events, data_quality = _events(bounds)
    return _as_api_json(
        {
            "period": bounds.period,
            "start": bounds.start,
            "end": bounds.end,
            "portfolio": portfolio,
            "bots": bots,
            "risk_events": risk_events,
            "data_quality": data_quality,
        }
    )


def report_html(bounds: Bounds, figures: dict[str, Any]) -> str:
    return render_to_string("reports/report.html", {"bounds": bounds, "figures": figures})


@dataclass
class Built:
    bounds: Bounds
    figures: dict[str, Any]
    html: str
    csv: str
    generated_at: datetime


def build_report(bounds: Bounds) -> Built:
    figures = report_figures(bounds)
    return Built(bounds, figures, report_html(bounds, figures), trades_csv(bounds), timezone.now())


def _send(report: Report, addresses: list[str]) -> None:
    name = f"{report.period}-report-{report.start:%Y-%m-%d}"
    message = EmailMultiAlternatives(
        subject=f"Trading bots: {report.period} report, {report.start:%Y-%m-%d}",
        body="The report is in the HTML part; the period's trades are attached as CSV.",
        to=addresses,
    )
    message.attach_alternative(report.html, "text/html")
    message.attach(f"{name}-trades.csv", report.trades_csv, "text/csv")
    message.send(fail_silently=False)


def send_reports(
    period: str, day: date, *, now: datetime | None = None
) -> list[tuple[ReportRecipientList, str]]:
    """The period containing ``day`` reported to each active recipient list of ``period``:
    [(list, "sent" | "already sent")]. The figures are built once, and only if a list still
    needs them."""
    bounds = period_bounds(period, day)
    lists = list(ReportRecipientList.objects.filter(period=period, is_active=True))
    built: Built | None = None
    outcomes = []
    for recipients in lists:
        if Report.objects.filter(
            recipient_list=recipients, period=period, start=bounds.start, sent_at__isnull=False
        ).exists():
            outcomes.append((recipients, "already sent"))
            continue
        if built is None:
            built = build_report(bounds)
        outcomes.append((recipients, _send_one(recipients, built, now=now)))
    return outcomes


def _send_one(recipients: ReportRecipientList, built: Built, *, now: datetime | None) -> str:
    bounds = built.bounds
    with transaction.atomic():
        report, _ = Report.objects.get_or_create(
            recipient_list=recipients,
            period=bounds.period,
            start=bounds.start,
            defaults={
                "end": bounds.end,
                "generated_at": built.generated_at,
                "figures_json": json.dumps(built.figures),
                "html": built.html,
                "trades_csv": built.csv,
                "recipients": ", ".join(recipients.addresses),
            },
        )
        # The lock waits for a concurrent run of the same period; it then finds it sent.
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.sent_at is not None:
            return "already sent"
        _send(report, recipients.addresses)
        report.sent_at = now or timezone.now()
        report.save(update_fields=["sent_at"])
    return "sent"
