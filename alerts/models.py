"""The alerts schema: where events go (channels, rules), the outbox of what must be sent
(alerts, written by database triggers in the transaction of the event they report), every try to
send one (delivery attempts), and who acknowledged an event."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce

from audit.models import Severity
from trading.db import choices_check, schema_table
from trading.models import Bot

SCHEMA = "alerts"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook"
    SLACK = "slack"
    DISCORD = "discord"
    TELEGRAM = "telegram"
    EMAIL = "email"


class EventType(models.TextChoices):
    """What a rule routes; the triggers (migration 0002) map the audit rows onto these."""

    RISK_LIMIT = "risk_limit"
    STALE_HEARTBEAT = "stale_heartbeat"
    BOT_PAUSED = "bot_paused"
    DATA_QUALITY = "data_quality"
    BACKUP_FAILED = "backup_failed"
    DRILL_FAILED = "drill_failed"
    TASK_FAILING = "task_failing"


class AlertKind(models.TextChoices):
    EVENT = "event"
    RESOLUTION = "resolution"
    ESCALATION = "escalation"
    CHANNEL_FAILING = "channel_failing"
    TEST = "test"


class AlertStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"


class Source(models.TextChoices):
    RISK_EVENT = "risk_event"
    SYSTEM_EVENT = "system_event"
    CHANGE_LOG = "change_log"
    DELIVERY_ATTEMPT = "delivery_attempt"  # a channel marked failing by this attempt
    CHANNEL = "channel"  # a test message


class AttemptStatus(models.TextChoices):
    DELIVERED = "delivered"
    FAILED = "failed"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"


class Channel(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url = models.CharField(
        max_length=500, blank=True, default="", help_text="Webhook, Slack or Discord URL."
    )
    secret = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Webhook signing key or Telegram bot token. Write-only: never shown again.",
    )
    chat_id = models.CharField(max_length=64, blank=True, default="", help_text="Telegram.")
    recipients = models.TextField(
        blank=True, default="", help_text="E-mail addresses, comma separated."
    )
    is_active = models.BooleanField(default=True)
    failing = models.BooleanField(default=False)
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.IntegerField(default=0)
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="Rate-limited by the receiver until then."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = schema_table(SCHEMA, "channels")
        ordering = ["name"]
        constraints = [choices_check("channels", "kind", ChannelKind)]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Rule(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100, blank=True, default="")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    min_severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING
    )
    bot = models.ForeignKey(
        Bot,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: every bot.",
    )
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="rules")
    quiet_start = models.TimeField(null=True, blank=True, help_text="UTC; critical ignores it.")
    quiet_end = models.TimeField(null=True, blank=True, help_text="UTC.")
    escalate_after_minutes = models.IntegerField(null=True, blank=True)
    escalation_channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    send_resolution = models.BooleanField(default=True)
    resolution_message = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = schema_table(SCHEMA, "rules")
        ordering = ["id"]
        constraints = [
            choices_check("rules", "event_type", EventType),
            choices_check("rules", "min_severity", Severity),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="rules_quiet_hours_both",
            ),
            models.CheckConstraint(
                condition=Q(escalate_after_minutes__isnull=True, escalation_channel__isnull=True)
                | Q(escalate_after_minutes__gte=1, escalation_channel__isnull=False),
                name="rules_escalation_both",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} >= {self.min_severity} -> {self.channel_id}"


class Alert(models.Model):
    """The outbox: one row per (what, source row, channel); the unique key makes a second
    trigger firing, beat or worker a no-op (ON CONFLICT DO NOTHING)."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_id = models.BigIntegerField()
    rule = models.ForeignKey(Rule, on_delete=models.SET_NULL, null=True, blank=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="alerts")
    # Null for alerts about no bot (a backup): coalesce(bot_id, '') keys the per-bot queues.
    bot_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    event_type = models.CharField(max_length=32)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    message = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING
    )
    due_at = models.DateTimeField(help_text="The next try.")
    first_due_at = models.DateTimeField(
        help_text="When it was first due: its creation, or the end of its rule's quiet hours."
    )
    attempts = models.IntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = schema_table(SCHEMA, "alerts")
        ordering = ["-id"]
        constraints = [
            choices_check("alerts", "kind", AlertKind),
            choices_check("alerts", "source", Source),
            choices_check("alerts", "status", AlertStatus),
            models.UniqueConstraint(
                fields=["kind", "source", "source_id", "channel"], name="alerts_episode_uniq"
            ),
            models.CheckConstraint(
                condition=Q(status=AlertStatus.PENDING, delivered_at__isnull=True)
                | Q(status=AlertStatus.DELIVERED, delivered_at__isnull=False),
                name="alerts_delivered_has_time",
            ),
        ]
        indexes = [
            # The heads of the per-(channel, bot) queues (alerts/services/delivery.py).
            models.Index(
                "channel",
                Coalesce("bot_id", models.Value("")),
                "id",
                condition=Q(status=AlertStatus.PENDING),
                name="alerts_pending_idx",
            ),
            models.Index(fields=["source", "source_id"], name="alerts_source_idx"),
            models.Index(
                fields=["delivered_at"],
                condition=Q(status=AlertStatus.DELIVERED),
                name="alerts_delivered_at_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"alert {self.id} {self.kind} {self.event_type} -> {self.channel_id}"


class DeliveryAttempt(models.Model):
    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="attempts_made")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=AttemptStatus.choices)
    response_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField()
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = schema_table(SCHEMA, "delivery_attempts")
        ordering = ["-id"]
        constraints = [choices_check("delivery_attempts", "status", AttemptStatus)]
        indexes = [
            models.Index(fields=["alert", "id"], name="delivery_attempts_alert_idx"),
            models.Index(fields=["channel", "-started_at"], name="delivery_attempts_channel_idx"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.id} of alert {self.alert_id}: {self.status}"


class Acknowledgement(models.Model):
    """Someone saw an event: stops its escalation. Audited in audit.change_log too."""

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ts = models.DateTimeField()
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = schema_table(SCHEMA, "acknowledgements")
        ordering = ["-ts"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="acks_source_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.source_id} acknowledged"
