"""Admin pages for the audit schema: all read-only, except resolving a risk event.

Resolving goes through ``audit.services.risk_event_resolve``, which records who, when and the
note, and writes the change record in the same transaction.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from atb_site.admin_tools import DateRangeFilter, ReadOnlyModelAdmin, TextInputFilter, request_user
from audit.api.reads import RiskEventOutputSerializer
from audit.models import Backup, ChangeLog, RiskEvent, ScheduledRun, SystemEvent
from audit.services import risk_event_resolve
from trading.admin_exports import export_actions


@admin.register(SystemEvent)
class SystemEventAdmin(ReadOnlyModelAdmin):
    list_display = ("ts", "severity", "bot", "component", "event_type", "short_message")
    list_select_related = ("bot",)
    list_filter = (
        "bot",
        "severity",
        ("component", TextInputFilter),
        ("event_type", TextInputFilter),
        ("ts", DateRangeFilter),
    )
    ordering = ("-ts", "-id")  # system_events_ts_idx / system_events_bot_ts_idx
    sortable_by = ("ts",)

    @admin.display(description="message")
    def short_message(self, event: SystemEvent) -> str:
        return Truncator(event.message).chars(120)


class RiskEventResolveForm(forms.Form):
    note = forms.CharField(
        label="Resolution note",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="How was it resolved? Recorded with your name and the time.",
    )


@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "ts",
        "bot",
        "event_type",
        "severity",
        "limit_value",
        "actual_value",
        "action_taken",
        "resolved",
        "resolved_by",
        "resolved_at",
    )
    list_select_related = ("bot", "resolved_by")
    list_filter = (
        "resolved",
        "bot",
        "event_type",
        "severity",
        "action_taken",
        ("ts", DateRangeFilter),
    )
    ordering = ("-ts", "-id")
    actions = (
        "resolve_events",
        *export_actions(RiskEventOutputSerializer.Meta.fields, ordering=("-ts", "-id")),
    )

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description="Resolve selected risk events…", permissions=["resolve"])
    def resolve_events(
        self, request: HttpRequest, queryset: QuerySet[RiskEvent]
    ) -> TemplateResponse | None:
        user = request_user(request)
        form = RiskEventResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            resolved = 0
            for event in queryset.order_by("id"):
                try:
                    risk_event_resolve(event=event, user=user, note=form.cleaned_data["note"])
                except ValidationError as exc:
                    self.message_user(request, " ".join(exc.messages), messages.WARNING)
                else:
                    resolved += 1
            if resolved:
                self.message_user(request, f"Resolved {resolved} risk event(s).", messages.SUCCESS)
            return None  # back to the list

        events = list(queryset.select_related("bot", "resolved_by").order_by("-ts", "-id"))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Resolve risk events",
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "events": events,
            "already_resolved": [event for event in events if event.resolved],
            "form": form,
            "action_name": "resolve_events",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/audit/riskevent/resolve_confirmation.html", context)


@admin.register(ChangeLog)
class ChangeLogAdmin(ReadOnlyModelAdmin):
    list_display = ("ts", "user", "actor_bot", "action", "entity_type", "entity_id", "short_note")
    list_select_related = ("user", "actor_bot")
    list_filter = (
        "action",
        ("entity_type", TextInputFilter),
        ("entity_id", TextInputFilter),
        "actor_bot",
        ("ts", DateRangeFilter),
    )
    ordering = ("-ts", "-id")  # change_log_ts_idx / change_log_entity_idx
    sortable_by = ("ts",)

    @admin.display(description="note")
    def short_note(self, record: ChangeLog) -> str:
        return Truncator(record.note).chars(80)


@admin.register(Backup)
class BackupAdmin(ReadOnlyModelAdmin):
    """What db_backup and the hourly task did; read-only (retention deletes old rows)."""

    list_display = (
        "started_at",
        "database",
        "status",
        "verified",
        "size_bytes",
        "duration",
        "path",
        "drilled_at",
        "short_error",
    )
    list_filter = ("status", "verified", "database", ("started_at", DateRangeFilter))
    ordering = ("-started_at", "-id")  # backups_database_idx
    sortable_by = ("started_at",)

    @admin.display(description="seconds")
    def duration(self, backup: Backup) -> str:
        return f"{backup.duration_seconds:.1f}"

    @admin.display(description="error")
    def short_error(self, backup: Backup) -> str:
        """The backup's error, else why its last restore drill failed."""
        if backup.drill_error:
            return Truncator(f"restore drill: {backup.drill_error}").chars(120)
        return Truncator(backup.error).chars(120)


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyModelAdmin):
    """Which slot of which scheduled task did its work, and when (audit/scheduled.py)."""

    list_display = ("slot", "task", "claimed_at")
    list_filter = ("task", ("slot", DateRangeFilter))
    ordering = ("-slot", "task")
    sortable_by = ("slot",)
