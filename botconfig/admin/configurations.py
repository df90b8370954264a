"""Admin for versioned configurations: a version is never edited in place or deleted.

Saving the form of the version in force writes the next version (``config_version_create``);
"roll back to this version" writes a new version equal to an old one (``config_rollback``).
Both write the audit record in the same transaction.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from atb_site.admin_tools import JSONObjectField, json_block, json_compact, request_user
from botconfig.models import BotConfiguration
from botconfig.selectors import (
    ConfigChange,
    config_active,
    config_diff,
    config_history,
    config_previous,
)
from botconfig.services import REASON_NEEDED, config_rollback, config_version_create
from botconfig.validation import config_errors
from trading.models import BotStatus

HISTORY_ROWS = 10


def config_diff_table(changes: list[ConfigChange]) -> SafeString:
    """The differences between two configurations as a path / kind / old / new table."""
    if not changes:
        return format_html("<p>{}</p>", "No difference.")
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                change.path,
                change.kind,
                "" if change.kind == "added" else json_compact(change.old),
                "" if change.kind == "removed" else json_compact(change.new),
            )
            for change in changes
        ),
    )
    return format_html(
        '<table class="atb-config-diff"><thead><tr><th>path</th><th>kind</th><th>old</th>'
        "<th>new</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def version_url(version: BotConfiguration) -> str:
    return reverse("admin:botconfig_botconfiguration_change", args=[version.pk])


def version_history_table(
    versions: list[BotConfiguration], current: BotConfiguration | None = None
) -> SafeString:
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">v{}</a>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                version_url(version),
                version.version,
                " (this page)" if current is not None and version.pk == current.pk else "",
                "in force" if version.is_active else "",
                f"{timezone.localtime(version.effective_from):%Y-%m-%d %H:%M:%S}",
                (
                    f"{timezone.localtime(version.effective_to):%Y-%m-%d %H:%M:%S}"
                    if version.effective_to
                    else "—"
                ),
                version.created_by or "—",
                version.change_reason,
            )
            for version in versions
        ),
    )
    return format_html(
        '<table class="atb-config-history"><thead><tr><th>version</th><th>state</th>'
        "<th>from</th><th>to</th><th>by</th><th>reason</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


class BotConfigurationForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        label="Reason for the change",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 90}),
        help_text="Required for a live (active) bot; kept with the version and its change log.",
    )

    class Meta:
        model = BotConfiguration
        fields = ("bot", "config")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The version in force: the one on this page, or (adding) the chosen bot's.
        in_force = self.instance if self.instance.pk is not None else None
        if in_force is None and cleaned.get("bot") is not None:
            in_force = config_active(bot=cleaned["bot"])
        unchanged = (
            in_force is not None
            and "config" in cleaned
            and not config_diff(old=in_force.config, new=cleaned["config"])
        )
        if unchanged:
            self.add_error("config", "No change: this is the configuration in force already.")
            return cleaned
        bot = in_force.bot if in_force is not None else cleaned.get("bot")
        if bot is None:
            return cleaned
        # The checks config_version_create makes, shown on the form instead of a 500.
        if "config" in cleaned:
            errors = config_errors(strategy_type=bot.strategy_type, config=cleaned["config"])[1]
            if errors:
                self.add_error("config", errors)
        if bot.status == BotStatus.ACTIVE and not cleaned.get("reason", "").strip():
            self.add_error("reason", REASON_NEEDED)
        return cleaned


class RollbackForm(forms.Form):
    reason = forms.CharField(
        required=False,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 90}),
        help_text="Required for a live (active) bot. Otherwise defaults to “roll back to "
        "version N”.",
    )


_VERSION_FACTS = (
    "bot",
    "version",
    "is_active",
    "effective_from",
    "effective_to",
    "created_by",
    "change_reason",
    "schema",
    "schema_version",
    "created_at",
)


@admin.register(BotConfiguration)
class BotConfigurationAdmin(admin.ModelAdmin):
    form = BotConfigurationForm
    list_display = (
        "__str__",
        "bot",
        "version",
        "is_active",
        "effective_from",
        "effective_to",
        "created_by",
        "change_reason",
    )
    list_select_related = ("bot", "created_by")
    list_filter = ("bot", "is_active")
    search_fields = ("bot__bot_id", "change_reason")
    ordering = ("bot_id", "-version")  # bot_configurations_version_uniq
    autocomplete_fields = ("bot",)
    formfield_overrides = {models.JSONField: {"form_class": JSONObjectField}}

    # A version is history: it is never edited or deleted. Only the one in force opens as a
    # form, and saving that form writes the next version.
    def has_change_permission(
        self, request: HttpRequest, obj: BotConfiguration | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_active)

    def has_delete_permission(
        self, request: HttpRequest, obj: BotConfiguration | None = None
    ) -> bool:
        return False

    def has_rollback_permission(self, request: HttpRequest) -> bool:
        return super().has_change_permission(request)

    def get_fieldsets(self, request: HttpRequest, obj: BotConfiguration | None = None) -> Any:
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": ("bot", "config", "reason"),
                        "description": "Writes the bot's next version, in force from now; "
                        "the version in force until now is closed.",
                    },
                )
            ]
        if self.has_change_permission(request, obj):
            edit: tuple[str, ...] = ("config", "reason")
            description = (
                "Saving writes version "
                f"{obj.version + 1}, in force from now, and closes this one. "
                "This version itself is never changed."
            )
        else:
            edit, description = ("config_json",), "A past version: read-only."
        return [
            (None, {"fields": _VERSION_FACTS}),
            ("Configuration", {"fields": edit, "description": description}),
            ("Changes from the previous version", {"fields": ("changes",)}),
            ("Versions of this bot", {"fields": ("history",)}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: BotConfiguration | None = None) -> Any:
        if obj is None:
            return ()
        return (*_VERSION_FACTS, "config_json", "changes", "history")

    def save_model(
        self, request: HttpRequest, obj: BotConfiguration, form: Any, change: bool
    ) -> None:
        version = config_version_create(
            bot=obj.bot,
            config=form.cleaned_data["config"],
            user=request_user(request),
            change_reason=form.cleaned_data["reason"].strip(),
        )
        # From here on the admin (its log entry, the redirect) deals with the new version.
        obj.pk = version.pk
        obj.refresh_from_db()

    def response_add(
        self, request: HttpRequest, obj: BotConfiguration, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._response_saved(request, obj)

    def response_change(self, request: HttpRequest, obj: BotConfiguration) -> HttpResponse:
        return self._response_saved(request, obj)

    def _response_saved(self, request: HttpRequest, version: BotConfiguration) -> HttpResponse:
        self.message_user(
            request,
            f"Version {version.version} of {version.bot_id} is in force from now.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(version_url(version))

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            "has_rollback_permission": self.has_rollback_permission(request),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    # --- Read-only parts of the page -------------------------------------------------------

    @admin.display(description="config")
    def config_json(self, version: BotConfiguration) -> SafeString:
        return json_block(version.config)

    @admin.display(description="changes")
    def changes(self, version: BotConfiguration) -> SafeString:
        previous = config_previous(version=version)
        table = config_diff_table(
            config_diff(old=previous.config if previous else None, new=version.config)
        )
        if previous is None:
            return format_html("<p>{}</p>{}", "The first version.", table)
        return format_html(
            '<p>From <a href="{}">version {}</a>:</p>{}',
            version_url(previous),
            previous.version,
            table,
        )

    @admin.display(description="versions")
    def history(self, version: BotConfiguration) -> SafeString:
        versions = list(config_history(bot=version.bot)[:HISTORY_ROWS])
        if version.pk not in {v.pk for v in versions}:
            versions.append(version)
        return version_history_table(versions, current=version)

    # --- Roll back -------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name="{}_{}_rollback".format(*info),
            ),
            *super().get_urls(),
        ]

    def rollback_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm, then write a new version equal to this one (``config_rollback``)."""
        if not self.has_rollback_permission(request):
            raise PermissionDenied
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404(f"No configuration version {object_id}.")
        active = config_active(bot=version.bot)
        if active is not None and not config_diff(old=active.config, new=version.config):
            self.message_user(
                request,
                f"Version {version.version} is the configuration in force already "
                f"(version {active.version}); nothing to roll back.",
                messages.WARNING,
            )
            return redirect(version_url(version))

        form = RollbackForm(request.POST if request.method == "POST" else None)
        new_version = None
        if form.is_valid():
            try:
                new_version = config_rollback(
                    version=version,
                    user=request_user(request),
                    change_reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:  # refused by today's schema, or no reason given
                for name, errors in exc.message_dict.items():
                    form.add_error("reason" if name == "change_reason" else None, errors)
        if new_version is not None:
            self.message_user(
                request,
                f"Rolled back: version {new_version.version} of {new_version.bot_id} equals "
                f"version {version.version} and is in force from now.",
                messages.SUCCESS,
            )
            return redirect(version_url(new_version))

        context = {
            **self.admin_site.each_context(request),
            "title": f"Roll {version.bot_id} back to version {version.version}",
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": version,
            "active": active,
            "changes": config_diff_table(
                config_diff(old=active.config if active else None, new=version.config)
            ),
            "form": form,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/botconfig/botconfiguration/rollback_confirmation.html", context
        )
