"""Read-only admin pages for portfolio snapshots, the all-time performance summary and the
stored reports; the report recipient lists are edited here.

``bot_daily_performance`` has a composite primary key, which Django's admin cannot show.
"""

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from analytics.models import (
    BotPerformanceSummary,
    PortfolioSnapshot,
    Report,
    ReportRecipientList,
)
from atb_site.admin_tools import DateRangeFilter, ReadOnlyModelAdmin, request_user
from audit.models import ChangeAction
from audit.services import change_record, model_values


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


LIST_FIELDS = ("name", "period", "recipients", "is_active")


@admin.register(ReportRecipientList)
class ReportRecipientListAdmin(admin.ModelAdmin):
    """Who gets the daily or weekly report; every save is in the change log."""

    list_display = ("name", "period", "recipients", "is_active")
    list_filter = ("period", "is_active")
    fields = LIST_FIELDS
    ordering = ("name",)

    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        old = None
        if change:
            old = model_values(ReportRecipientList.objects.get(pk=obj.pk), LIST_FIELDS)
        super().save_model(request, obj, form, change)
        change_record(
            entity=obj,
            action=ChangeAction.UPDATE if change else ChangeAction.CREATE,
            old_values=old,
            new_values=model_values(obj, LIST_FIELDS),
            user=request_user(request),
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its reports keep it (PROTECT): clear "active" to stop sending


@admin.register(Report)
class ReportAdmin(ReadOnlyModelAdmin):
    """Stored reports, as built and sent; the HTML and the CSV to download from the dashboard."""

    list_display = ("start", "period", "recipient_list", "generated_at", "sent_at", "files")
    list_filter = ("period",)
    list_select_related = ("recipient_list",)
    ordering = ("-start", "-id")
    sortable_by = ()

    @admin.display(description="Download")
    def files(self, report: Report) -> str:
        return format_html(
            '<a href="{}">HTML</a> · <a href="{}">CSV</a>',
            reverse("dashboard:report-html", kwargs={"report_id": report.pk}),
            reverse("dashboard:report-csv", kwargs={"report_id": report.pk}),
        )
