"""The audit schema: what happened, what went wrong, and who changed what."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.db import QuantityField, choices_check, schema_table
from trading.models import Bot

SCHEMA = "audit"


class Severity(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class RiskEventType(models.TextChoices):
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    DRAWDOWN_LIMIT = "drawdown_limit"
    POSITION_SIZE_LIMIT = "position_size_limit"
    LEVERAGE_LIMIT = "leverage_limit"
    OPEN_POSITIONS_LIMIT = "open_positions_limit"
    STALE_HEARTBEAT = "stale_heartbeat"
    POSITION_MISMATCH = "position_mismatch"


class RiskAction(models.TextChoices):
    NONE = "none"
    ALERTED = "alerted"
    BOT_PAUSED = "bot_paused"


class SystemEvent(models.Model):
    """Append-only: a database trigger refuses UPDATE and DELETE (migration 0002)."""

    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField()
    bot = models.ForeignKey(
        Bot,
        on_delete=models.PROTECT,
        db_index=False,
        null=True,
        blank=True,
        related_name="system_events",
    )
    component = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "system_events")
        ordering = ["-ts"]
        constraints = [choices_check("system_events", "severity", Severity)]
        indexes = [
            models.Index(fields=["-ts"], name="system_events_ts_idx"),
            models.Index(fields=["bot", "-ts"], name="system_events_bot_ts_idx"),
            models.Index(fields=["event_type", "-ts"], name="system_events_type_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.severity} {self.component}: {self.event_type}"


class RiskEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField()
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, db_index=False, related_name="risk_events"
    )
    event_type = models.CharField(max_length=32, choices=RiskEventType.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    limit_value = QuantityField(null=True, blank=True)
    actual_value = QuantityField(null=True, blank=True)
    action_taken = models.CharField(
        max_length=16, choices=RiskAction.choices, default=RiskAction.NONE
    )
    resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    resolution_note = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "risk_events")
        ordering = ["-ts"]
        constraints = [
            choices_check("risk_events", "event_type", RiskEventType),
            choices_check("risk_events", "severity", Severity),
            choices_check("risk_events", "action_taken", RiskAction),
            models.CheckConstraint(
                condition=Q(resolved=False, resolved_at__isnull=True)
                | Q(resolved=True, resolved_at__isnull=False),
                name="risk_events_resolved_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-ts"], name="risk_events_bot_ts_idx"),
            models.Index(fields=["-ts"], name="risk_events_ts_idx"),
            models.Index(
                fields=["-ts"], condition=Q(resolved=False), name="risk_events_unresolved_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.event_type} {self.ts:%Y-%m-%d %H:%M}"


class ChangeAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    RESOLVE = "resolve"
    IMPORT = "import"


class ChangeLog(models.Model):
    """Who changed what, when, with the old and new values. Written by services only."""

    id = models.BigAutoField(primary_key=True)
    ts = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_bot = models.ForeignKey(
        Bot,
        on_delete=models.PROTECT,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set when a bot (through its token) made the change.",
    )
    entity_type = models.CharField(max_length=64, help_text="e.g. trading.bot")
    entity_id = models.CharField(max_length=128)
    action = models.CharField(max_length=16, choices=ChangeAction.choices)
    old_values = models.JSONField(default=dict, blank=True)
    new_values = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = schema_table(SCHEMA, "change_log")
        ordering = ["-ts", "-id"]
        verbose_name = "change record"
        constraints = [choices_check("change_log", "action", ChangeAction)]
        indexes = [
            models.Index(fields=["entity_type", "entity_id", "-ts"], name="change_log_entity_idx"),
            models.Index(fields=["-ts"], name="change_log_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.action} {self.entity_type}:{self.entity_id}"


class BackupStatus(models.TextChoices):
    OK = "ok"
    FAILED = "failed"


class Backup(models.Model):
    """One attempt of ``manage.py db_backup`` (or the hourly task): what was written and whether
    it checked out. Retention deletes the rows of the dumps it deletes; the system events of
    component "backups" keep the history."""

    id = models.BigAutoField(primary_key=True)
    database = models.CharField(max_length=63)
    status = models.CharField(max_length=16, choices=BackupStatus.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    path = models.TextField(blank=True, default="", help_text="The .dump file; empty if none.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    verified = models.BooleanField(
        default=False,
        help_text="pg_restore --list read the whole file back, and no restore drill of it failed.",
    )
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    drilled_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last restore drill of this backup ended."
    )
    drill_error = models.TextField(
        blank=True, default="", help_text="Why that drill failed; empty when it passed."
    )

    class Meta:
        db_table = schema_table(SCHEMA, "backups")
        ordering = ["-started_at", "-id"]
        constraints = [
            choices_check("backups", "status", BackupStatus),
            # A good backup is unverified again once a restore drill of it fails.
            models.CheckConstraint(
                condition=Q(status=BackupStatus.OK) | Q(verified=False),
                name="backups_failed_is_unverified",
            ),
        ]
        indexes = [
            models.Index(fields=["database", "-started_at"], name="backups_database_idx"),
            models.Index(
                fields=["database", "-started_at"],
                condition=Q(verified=True),
                name="backups_verified_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.database} {self.started_at:%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class ScheduledRun(models.Model):
    """The claim of one scheduled task on one due slot (audit.runs): written in the transaction
    that does the slot's work, under the task's advisory lock, so the slot's work commits once.
    A run that dies leaves no claim (its transaction rolls back); a second beat's copy of the
    slot, or a redelivery after the work committed, finds the claim and does nothing."""

    id = models.BigAutoField(primary_key=True)
    task = models.CharField(max_length=100)
    slot = models.DateTimeField(help_text="The start of the period the run was due for (UTC).")
    claimed_at = models.DateTimeField(help_text="When the run that did the work took the slot.")

    class Meta:
        db_table = schema_table(SCHEMA, "scheduled_runs")
        ordering = ["-slot", "task"]
        constraints = [
            models.UniqueConstraint(fields=["task", "slot"], name="scheduled_runs_task_slot_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.slot:%Y-%m-%d %H:%M}"
