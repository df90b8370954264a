"""The dashboard pages (/dashboard/): staff only, thin. The reports pages show the stored
reports (analytics.models.Report) as they were built and sent, not the API.

A view renders its template with the API addresses the page reads; every figure on the page
comes from the JSON API, fetched by static/dashboard/dashboard.js with the staff session
(GET only), and is refreshed every ``REFRESH_SECONDS`` without a reload (``?refresh=<s>``
overrides it, for tests and demos). The page's config also carries what format.js needs to
write a figure as trading/display.py does: each symbol's price places and each risk event
type's unit (docs/DESIGN.md, "Numbers a desk can read").
"""

from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode

from analytics.models import Report
from analytics.selectors.reports import report_list
from atb_site.db.replicas import staff_page
from trading.display import RISK_UNITS
from trading.selectors.lists import bot_list
from trading.selectors.precision import price_places

REFRESH_SECONDS = 30
# The bot page's equity chart asks for at most this many points of each series: a year of a
# busy bot is tens of thousands of trades, more than a chart's width shows (the API keeps each
# stretch's extremes and the maximum drawdown's peak and trough: equity/?max_points=).
EQUITY_MAX_POINTS = 2000
# The portfolio page draws the last this many hours of five-minute snapshots (288 a day, one
# page): each row carries every bot's figures (per_bot, some 15 kB at 100 bots).
SNAPSHOT_HOURS = 24
# Stands for the bot id in URL templates the page fills in for each bot (a valid slug).
BOT_PLACEHOLDER = "__bot__"


def _bot_api(name: str, bot_id: str) -> str:
    return reverse(f"analytics-api:bot-{name}", kwargs={"bot_id": bot_id})


def _exports(**tables: tuple[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Each table's export links (``?format=csv|parquet`` of the API read it shows, with the
    page's filters): {table: {"csv": url, "parquet": url}}."""
    return {
        table: {fmt: f"{url}?{urlencode({**params, 'format': fmt})}" for fmt in ("csv", "parquet")}
        for table, (url, params) in tables.items()
    }


def _common(page: str) -> dict[str, Any]:
    return {
        "page": page,
        "refresh_seconds": REFRESH_SECONDS,
        "portfolio_page": reverse("dashboard:portfolio"),
        "bot_page": reverse("dashboard:bot", kwargs={"bot_id": BOT_PLACEHOLDER}),
        "bot_placeholder": BOT_PLACEHOLDER,
        # A heartbeat older than this is shown as stale (the risk check's threshold).
        "stale_seconds": settings.BOT_HEARTBEAT_STALE_SECONDS,
        "price_places": price_places(),
        "risk_units": RISK_UNITS,
    }


@staff_member_required
@staff_page
def portfolio_page(request: HttpRequest) -> HttpResponse:
    """Totals, equity, daily PnL, exposure, the bots, open positions and the latest risk events."""
    config = {
        **_common("portfolio"),
        "snapshot_hours": SNAPSHOT_HOURS,
        "api": {
            "summary": reverse("analytics-api:portfolio-summary"),
            "snapshots": reverse("analytics-api:portfolio-snapshots"),
            "positions": reverse("api:positions"),
            "risk_events": reverse("risk-events"),
            "performance": reverse("analytics-api:portfolio-performance"),
        },
    }
    exports = _exports(
        bots=(reverse("api:bots"), {}),
        daily=(reverse("analytics-api:portfolio-performance"), {"period": "day"}),
        positions=(reverse("api:positions"), {"status": "open"}),
        risk_events=(reverse("risk-events"), {}),
    )
    return render(request, "dashboard/portfolio.html", {"config": config, "exports": exports})


@staff_member_required
@staff_page
def bot_page(request: HttpRequest, bot_id: str) -> HttpResponse:
    """One bot: equity and drawdown, the METRICS.md figures, months, exit reasons, trades."""
    bot = get_object_or_404(bot_list(bot=None), bot_id=bot_id)
    config = {
        **_common("bot"),
        "bot_id": bot.bot_id,
        "equity_max_points": EQUITY_MAX_POINTS,
        "api": {
            "summary": _bot_api("summary", bot.bot_id),
            "equity": _bot_api("equity", bot.bot_id),
            "performance": _bot_api("performance", bot.bot_id),
            "breakdown": _bot_api("breakdown", bot.bot_id),
            "trades": reverse("api:trades"),
        },
    }
    exports = _exports(
        monthly=(_bot_api("performance", bot.bot_id), {"period": "month"}),
        daily=(_bot_api("performance", bot.bot_id), {"period": "day"}),
        exit_reasons=(_bot_api("breakdown", bot.bot_id), {"by": "exit_reason"}),
        trades=(reverse("api:trades"), {"bot_id": bot.bot_id}),
    )
    context = {"config": config, "bot": bot, "exports": exports}
    return render(request, "dashboard/bot.html", context)


# The reports list shows the newest this many (a year of daily and weekly reports per list).
REPORTS_SHOWN = 500


@staff_member_required
@staff_page
def reports_page(request: HttpRequest) -> HttpResponse:
    """The stored reports, newest period first."""
    reports = report_list()[:REPORTS_SHOWN]
    context = {"config": {"page": "reports"}, "reports": reports, "limit": REPORTS_SHOWN}
    return render(request, "dashboard/reports.html", context)


@staff_member_required
@staff_page
def report_page(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(report_list(), pk=report_id)
    return render(
        request, "dashboard/report.html", {"config": {"page": "reports"}, "report": report}
    )


def _download(report: Report, body: str, kind: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    name = f"{report.period}-report-{report.start:%Y-%m-%d}-{report.recipient_list_id}"
    response["Content-Disposition"] = f'attachment; filename="{name}{kind}"'
    response["Cache-Control"] = "no-store"
    return response


@staff_member_required
@staff_page
def report_html(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(report_list(), pk=report_id)
    return _download(report, report.html, ".html", "text/html")


@staff_member_required
@staff_page
def report_csv(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(report_list(), pk=report_id)
    return _download(report, report.trades_csv, "-trades.csv", "text/csv")
