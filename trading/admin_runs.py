"""The admin's bot runs: a list (newest first, by bot, mode and status) and a read-only detail
with what was written in the run. Imported by trading.admin, which registers every model."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from atb_site.admin_tools import DateRangeFilter, ReadOnlyModelAdmin
from trading.models import AccountBalance, BotRun, Order, Signal, Trade


@admin.register(BotRun)
class BotRunAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "bot",
        "mode",
        "status",
        "started_at",
        "ended_at",
        "config_version",
        "code_version",
        "strategy_name",
        "host",
    )
    list_select_related = ("bot",)
    list_filter = ("mode", "status", "bot", ("started_at", DateRangeFilter))
    ordering = ("-started_at", "-id")
    sortable_by = ("started_at",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_fields(request, obj), "rows_written"]

    @admin.display(description="Rows written in this run")
    def rows_written(self, run: BotRun) -> str:
        counts = [
            (name, model.objects.filter(bot_id=run.bot_id, run=run).count())
            for name, model in (
                ("trades", Trade),
                ("orders", Order),
                ("signals", Signal),
                ("balances", AccountBalance),
            )
        ]
        return ", ".join(f"{count} {name}" for name, count in counts)
