"""Admin for the bot registry: status, equity, open positions and heartbeat of every bot.

Adding a bot goes through ``bot_register``, editing through ``bot_update``, the pause and resume
actions through ``bot_pause`` / ``bot_resume``; each writes the audit record. Bots are never
deleted.
"""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from atb_site.admin_tools import JSONObjectField, request_user
from botconfig.admin.configurations import HISTORY_ROWS, version_history_table
from botconfig.selectors import config_active, config_history
from botconfig.services import (
    BOT_EDITABLE_FIELDS,
    bot_pause,
    bot_register,
    bot_resume,
    bot_update,
)
from botconfig.validation import LIMIT_KEYS, config_errors
from trading.models import Bot, BotStatus, Position, PositionStatus


def heartbeat_stale_before() -> datetime:
    """Heartbeats older than this are stale (settings.BOT_HEARTBEAT_STALE_SECONDS)."""
    return timezone.now() - timedelta(seconds=settings.BOT_HEARTBEAT_STALE_SECONDS)


class HeartbeatFilter(admin.SimpleListFilter):
    title = "heartbeat"
    parameter_name = "heartbeat"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        minutes = settings.BOT_HEARTBEAT_STALE_SECONDS / 60
        return [
            ("fresh", "Fresh"),
            ("stale", f"Stale (over {minutes:g} min)"),
            ("never", "Never seen"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        match self.value():
            case "fresh":
                return queryset.filter(last_heartbeat_at__gte=heartbeat_stale_before())
            case "stale":
                return queryset.filter(last_heartbeat_at__lt=heartbeat_stale_before())
            case "never":
                return queryset.filter(last_heartbeat_at__isnull=True)
        return queryset


class BotForm(forms.ModelForm):
    class Meta:
        model = Bot
        fields = ("bot_id", *BOT_EDITABLE_FIELDS)

    def clean_metadata(self) -> Any:
        value = self.cleaned_data.get("metadata")
        return {} if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        strategy_type = cleaned.get("strategy_type")
        in_force = None if self.instance._state.adding else config_active(bot=self.instance)
        if in_force is not None and strategy_type and strategy_type != self.instance.strategy_type:
            errors = config_errors(strategy_type=strategy_type, config=in_force.config)[1]
            if errors:  # as bot_update refuses it: the configuration in force must stay valid
                self.add_error(
                    "strategy_type",
                    f"The configuration in force (version {in_force.version}) fails this "
                    f"type's schema: {'; '.join(errors)}",
                )
        return cleaned


class BotAddForm(BotForm):
    initial_config = JSONObjectField(
        required=False,
        label="Initial configuration",
        help_text="Optional. Becomes configuration version 1; its risk.max_* keys are the "
        "bot's risk limits.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        config, strategy_type = cleaned.get("initial_config"), cleaned.get("strategy_type")
        if config is not None and strategy_type:
            errors = config_errors(strategy_type=strategy_type, config=config)[1]
            if errors:
                self.add_error("initial_config", errors)
        return cleaned


_BOT_IDENTITY = ("bot_id", "name", "strategy_type", "exchange", "base_currency", "status", "mode")
_BOT_LIMITS = ("initial_capital_usd", *LIMIT_KEYS)
_LIMITS_NOTE = (
    "The max_* limits are the risk.max_* keys of the configuration in force, written here "
    "when a version is put in force; change them with a new configuration version."
)
_BOT_REPORTED = (
    "current_equity_usd",
    "open_positions",
    "heartbeat",
    "created_at",
    "updated_at",
)


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotForm
    list_display = (
        "bot_id",
        "name",
        "strategy_type",
        "exchange",
        "status",
        "mode",
        "current_equity_usd",
        "open_positions",
        "heartbeat",
    )
    list_filter = ("status", "mode", HeartbeatFilter, "exchange", "strategy_type")
    search_fields = ("bot_id", "name", "strategy_type")
    ordering = ("bot_id",)
    actions = ("pause_bots", "resume_bots")
    formfield_overrides = {models.JSONField: {"form_class": JSONObjectField}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Bot]:
        open_positions = (
            Position.objects.filter(
                bot=OuterRef("pk"),
                status__in=[PositionStatus.OPEN, PositionStatus.PARTIALLY_CLOSED],
            )
            .order_by()
            .values("bot")
            .annotate(n=Count("*"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_positions_count=Coalesce(
                    Subquery(open_positions, output_field=IntegerField()), Value(0)
                )
            )
        )

    def has_delete_permission(self, request: HttpRequest, obj: Bot | None = None) -> bool:
        return False  # bots are never deleted; stop them instead

    def get_form(
        self, request: HttpRequest, obj: Bot | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = BotAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Bot | None = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": _BOT_IDENTITY}),
                ("Capital", {"fields": ("initial_capital_usd",)}),
                ("Metadata", {"fields": ("metadata",)}),
                ("Configuration", {"fields": ("initial_config",), "description": _LIMITS_NOTE}),
            ]
        return [
            (None, {"fields": _BOT_IDENTITY}),
            ("Capital and risk limits", {"fields": _BOT_LIMITS, "description": _LIMITS_NOTE}),
            ("Reported by the bot", {"fields": _BOT_REPORTED}),
            ("Metadata", {"fields": ("metadata",)}),
            ("Configuration versions", {"fields": ("configuration_versions",)}),
            ("Audit", {"fields": ("audit_trail",)}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Bot | None = None) -> Any:
        if obj is None:
            return ()
        return ("bot_id", *LIMIT_KEYS, *_BOT_REPORTED, "configuration_versions", "audit_trail")

    def save_model(self, request: HttpRequest, obj: Bot, form: Any, change: bool) -> None:
        user = request_user(request)
        data = {
            name: form.cleaned_data[name] for name in BOT_EDITABLE_FIELDS if name in form.fields
        }
        if change:
            bot_update(bot=obj, data=data, user=user)
        else:
            bot_register(
                bot_id=obj.bot_id,
                config=form.cleaned_data.get("initial_config"),
                user=user,
                **data,
            )
        obj.refresh_from_db()

    # --- Columns ---------------------------------------------------------------------------

    @admin.display(description="open positions", ordering="open_positions_count")
    def open_positions(self, bot: Bot) -> int:
        return int(getattr(bot, "open_positions_count", 0))

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat(self, bot: Bot) -> str:
        seen = bot.last_heartbeat_at
        if seen is None:
            return "never"
        text = f"{timezone.localtime(seen):%Y-%m-%d %H:%M:%S} ({timesince(seen)} ago)"
        if seen < heartbeat_stale_before():
            return format_html(
                '{} <strong class="atb-stale" style="color:#ba2121">stale</strong>', text
            )
        return text

    @admin.display(description="configuration versions")
    def configuration_versions(self, bot: Bot) -> SafeString:
        add_url = reverse("admin:botconfig_botconfiguration_add") + "?" + urlencode({"bot": bot.pk})
        versions = list(config_history(bot=bot)[: HISTORY_ROWS + 1])
        if not versions:
            return format_html('None yet. <a href="{}">Add version 1</a>.', add_url)
        list_url = (
            reverse("admin:botconfig_botconfiguration_changelist")
            + "?"
            + urlencode({"bot__bot_id__exact": bot.pk})
        )
        return format_html(
            '{}<p><a href="{}">All versions</a></p>',
            version_history_table(versions[:HISTORY_ROWS]),
            list_url,
        )

    @admin.display(description="change log")
    def audit_trail(self, bot: Bot) -> SafeString:
        url = (
            reverse("admin:audit_changelog_changelist")
            + "?"
            + urlencode({"entity_type": bot._meta.label_lower, "entity_id": bot.pk})
        )
        return format_html('<a href="{}">Changes made to this bot</a>', url)

    # --- Actions ---------------------------------------------------------------------------

    @admin.action(description="Pause selected bots", permissions=["change"])
    def pause_bots(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        user = request_user(request)
        bots = list(queryset)
        changed = [bot for bot in bots if bot_pause(bot=bot, user=user).status != bot.status]
        self._report(request, "Paused", changed, len(bots), "active or erroring")

    @admin.action(description="Resume selected bots", permissions=["change"])
    def resume_bots(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        user = request_user(request)
        bots = list(queryset)
        changed = [bot for bot in bots if bot_resume(bot=bot, user=user).status != bot.status]
        self._report(request, "Resumed", changed, len(bots), BotStatus.PAUSED)

    def _report(
        self, request: HttpRequest, verb: str, changed: list[Bot], selected: int, only: str
    ) -> None:
        if changed:
            names = ", ".join(bot.bot_id for bot in changed)
            self.message_user(request, f"{verb} {len(changed)} bot(s): {names}.", messages.SUCCESS)
        if selected > len(changed):
            self.message_user(
                request,
                f"{selected - len(changed)} bot(s) left as they were: only {only} bots can be "
                f"{verb.lower()}.",
                messages.WARNING,
            )
