"""Bots, their runs, their API tokens and the idempotency keys of their writes."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from trading.db import (
    PctField,
    UsdField,
    choices_check,
    schema_table,
)
from trading.models.choices import SCHEMA, BotMode, BotStatus, RunMode, RunStatus


class Bot(models.Model):
    bot_id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=200)
    strategy_type = models.CharField(max_length=100)
    exchange = models.CharField(max_length=50)
    base_currency = models.CharField(max_length=16, default="USDT")
    status = models.CharField(max_length=16, choices=BotStatus.choices, default=BotStatus.ACTIVE)
    mode = models.CharField(max_length=16, choices=BotMode.choices, default=BotMode.PAPER)
    initial_capital_usd = UsdField()
    current_equity_usd = UsdField(null=True, blank=True)
    max_position_size_usd = UsdField(null=True, blank=True)
    max_daily_loss_usd = UsdField(null=True, blank=True)
    max_drawdown_pct = PctField(null=True, blank=True)
    max_leverage = PctField(null=True, blank=True)
    max_open_positions = models.PositiveIntegerField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "bots")
        ordering = ["bot_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(bot_id__regex=r"^[a-z0-9][a-z0-9_\-]*$"), name="bots_bot_id_slug"
            ),
            choices_check("bots", "status", BotStatus),
            choices_check("bots", "mode", BotMode),
            models.CheckConstraint(
                condition=Q(initial_capital_usd__gt=0), name="bots_initial_capital_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown_pct__isnull=True)
                | Q(max_drawdown_pct__gt=0, max_drawdown_pct__lte=100),
                name="bots_max_drawdown_pct_range",
            ),
            models.CheckConstraint(
                condition=Q(max_leverage__isnull=True) | Q(max_leverage__gt=0),
                name="bots_max_leverage_positive",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="bots_status_idx")]

    def __str__(self) -> str:
        return self.bot_id


class BotRun(models.Model):
    """One run of a bot's engine, from start to stop (seed 001's trading sessions). What a bot
    writes while a run is open is linked to it (trading.services.runs.OPEN_RUN_SQL). Natural
    key: (bot, started_at)."""

    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="runs")
    mode = models.CharField(max_length=16, choices=RunMode.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.OPEN)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=255, blank=True, default="")
    config_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The bot's configuration version in force."
    )
    code_version = models.CharField(max_length=128, blank=True, default="")
    strategy_name = models.CharField(max_length=100, blank=True, default="")
    strategy_params = models.JSONField(default=dict, blank=True)
    host = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = schema_table(SCHEMA, "bot_runs")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "started_at"], name="bot_runs_bot_started_uniq"),
            # The target of the (bot_id, run_id) foreign keys: a row links only to its bot's run.
            models.UniqueConstraint(fields=["bot", "id"], name="bot_runs_bot_id_uniq"),
            # One open run per bot: what the write paths link to is never ambiguous.
            models.UniqueConstraint(
                fields=["bot"], condition=Q(ended_at__isnull=True), name="bot_runs_one_open"
            ),
            choices_check("bot_runs", "mode", RunMode),
            choices_check("bot_runs", "status", RunStatus),
            models.CheckConstraint(
                condition=Q(status=RunStatus.OPEN, ended_at__isnull=True)
                | (~Q(status=RunStatus.OPEN) & Q(ended_at__gte=F("started_at"))),
                name="bot_runs_open_iff_not_ended",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} run {self.pk} ({self.mode})"


def run_field() -> models.ForeignKey:
    """The run a row was written in: set by the write paths, never by the bot's id alone. The
    (bot_id, run_id) foreign key of migration 0012 keeps it to the row's own bot's runs."""
    return models.ForeignKey(
        BotRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,  # the composite (bot_id, run_id) key of 0012 is the constraint
        related_name="+",
    )


class ApiToken(models.Model):
    """A bearer token for the API, bound to one bot or to one staff user. Stored as a hash.

    The full token is shown once when it is made; afterwards only ``prefix`` identifies it.
    """

    id = models.BigAutoField(primary_key=True)
    key_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the token")
    prefix = models.CharField(max_length=16, help_text="The token's first characters.")
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, null=True, blank=True, related_name="api_tokens"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_tokens",
    )
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "api_tokens")
        ordering = ["-created_at"]
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(
                condition=Q(bot__isnull=False, user__isnull=True)
                | Q(bot__isnull=True, user__isnull=False),
                name="api_tokens_one_owner",
            ),
        ]

    def __str__(self) -> str:
        owner = self.bot_id or f"user {self.user_id}"
        return f"{self.prefix}… ({owner})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotencyKey(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed to its repeats."""

    id = models.BigAutoField(primary_key=True)
    principal = models.CharField(max_length=80, help_text="bot:<bot_id> or user:<id>")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = schema_table(SCHEMA, "idempotency_keys")
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_keys_uniq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_keys_created_idx")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
