"""Admin pages for alerts: channels and rules are edited here; alerts, attempts and
acknowledgements are read-only. A channel's secret is write-only: the form never shows it, and
saving the form with the field empty keeps the stored one."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from alerts.models import Acknowledgement, Alert, Channel, DeliveryAttempt, Rule
from alerts.services.channels import channel_clean
from alerts.services.delivery import alert_test_create
from alerts.services.escalation import event_acknowledge
from alerts.tasks import deliver
from atb_site.admin_tools import ReadOnlyModelAdmin, ReadOnlyTabularInline, request_user
from atb_site.celery import enqueue_on_commit


class ChannelForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Webhook signing key or Telegram bot token. Never shown again after saving; "
        "leave empty to keep the stored one.",
    )

    class Meta:
        model = Channel
        fields = ("name", "kind", "url", "secret", "chat_id", "recipients", "is_active")

    def clean_secret(self) -> str:
        secret: str = self.cleaned_data.get("secret", "")
        if not secret and self.instance.pk:
            return str(Channel.objects.values_list("secret", flat=True).get(pk=self.instance.pk))
        return secret

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            channel_clean(
                kind=data.get("kind", ""),
                url=data.get("url", ""),
                secret=data.get("secret", ""),
                chat_id=data.get("chat_id", ""),
                recipients=data.get("recipients", ""),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = (
        "name",
        "kind",
        "is_active",
        "failing",
        "consecutive_failures",
        "secret_set",
        "paused_until",
    )
    list_filter = ("kind", "is_active", "failing")
    readonly_fields = ("failing", "failing_since", "consecutive_failures", "paused_until")
    actions = ("send_test_message",)

    @admin.display(description="secret", boolean=True)
    def secret_set(self, channel: Channel) -> bool:
        return bool(channel.secret)

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        sent = [alert_test_create(channel=channel) for channel in queryset.order_by("name")]
        enqueue_on_commit(deliver)
        ids = ", ".join(str(alert.id) for alert in sent)
        self.message_user(
            request,
            f"Queued {len(sent)} test message(s) (alert {ids}); see their delivery attempts.",
            messages.SUCCESS,
        )


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "event_type",
        "min_severity",
        "bot",
        "channel",
        "quiet_start",
        "quiet_end",
        "escalate_after_minutes",
        "escalation_channel",
        "is_active",
    )
    list_filter = ("event_type", "min_severity", "is_active", "channel")
    list_select_related = ("bot", "channel", "escalation_channel")
    raw_id_fields = ("bot",)


class DeliveryAttemptInline(ReadOnlyTabularInline):
    model = DeliveryAttempt
    fields = ("started_at", "status", "response_code", "latency_ms", "error")
    ordering = ("id",)


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded with your name and the time; stops the escalation.",
    )


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "event_type",
        "severity",
        "bot_id",
        "channel",
        "status",
        "attempts",
        "delivered_at",
        "short_message",
    )
    list_select_related = ("channel",)
    list_filter = ("status", "kind", "event_type", "severity", "channel")
    ordering = ("-id",)
    inlines = (DeliveryAttemptInline,)
    actions = ("acknowledge_events",)

    @admin.display(description="message")
    def short_message(self, alert: Alert) -> str:
        return Truncator(alert.message).chars(100)

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("alerts.add_acknowledgement")

    @admin.action(
        description="Acknowledge the events of selected alerts…", permissions=["acknowledge"]
    )
    def acknowledge_events(
        self, request: HttpRequest, queryset: QuerySet[Alert]
    ) -> TemplateResponse | None:
        user = request_user(request)
        form = AcknowledgeForm(request.POST if "apply" in request.POST else None)
        alerts = list(queryset.order_by("id"))
        if form.is_valid():
            done = 0
            events = dict.fromkeys((a.source, a.source_id) for a in alerts)
            for source, source_id in events:
                try:
                    event_acknowledge(
                        source=source,
                        source_id=source_id,
                        user=user,
                        note=form.cleaned_data["note"],
                    )
                except ValidationError as exc:
                    self.message_user(request, " ".join(exc.messages), messages.WARNING)
                else:
                    done += 1
            if done:
                self.message_user(request, f"Acknowledged {done} event(s).", messages.SUCCESS)
            return None
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Acknowledge events",
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "alerts": alerts,
            "form": form,
            "action_name": "acknowledge_events",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/alerts/alert/acknowledge_confirmation.html", context
        )


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "started_at",
        "alert",
        "channel",
        "status",
        "response_code",
        "latency_ms",
        "error",
    )
    list_select_related = ("channel", "alert")
    list_filter = ("status", "channel")
    ordering = ("-id",)


@admin.register(Acknowledgement)
class AcknowledgementAdmin(ReadOnlyModelAdmin):
    list_display = ("ts", "source", "source_id", "user", "note")
    list_select_related = ("user",)
    ordering = ("-ts",)
