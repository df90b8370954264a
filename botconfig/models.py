"""The config schema: versioned bot configurations. A version is never edited in place."""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.db import models
from django.db.models import F, Func, Q

from trading.db import schema_table
from trading.models import Bot


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class StrategySchema(models.Model):
    """The JSON Schema a strategy type's configurations must satisfy; ``default`` serves a type
    without one. Loaded from ``botconfig/schemas/*.json`` by a migration, then data: staff edit
    it in the admin (``strategy_schema_save``), each edit bumping ``version``."""

    DEFAULT = "default"

    id = models.BigAutoField(primary_key=True)
    strategy_type = models.CharField(max_length=100, unique=True)
    schema = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = schema_table("config", "strategy_schemas")
        ordering = ["strategy_type"]
        constraints = [
            models.CheckConstraint(
                condition=Q(version__gte=1), name="strategy_schemas_version_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_type} v{self.version}"


class BotConfiguration(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, db_index=False, related_name="configurations"
    )
    version = models.PositiveIntegerField()
    config = models.JSONField(default=dict)
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    change_reason = models.TextField(blank=True, default="")
    # The schema (and its version) this version was validated against; empty before schemas.
    schema = models.ForeignKey(
        StrategySchema,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
    )
    schema_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = schema_table("config", "bot_configurations")
        ordering = ["bot", "-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "version"], name="bot_configurations_version_uniq"
            ),
            models.UniqueConstraint(
                fields=["bot"], condition=Q(is_active=True), name="bot_configurations_one_active"
            ),
            ExclusionConstraint(
                name="bot_configurations_no_overlap",
                expressions=[
                    (F("bot"), RangeOperators.EQUAL),
                    (
                        TsTzRange("effective_from", "effective_to", RangeBoundary()),
                        RangeOperators.OVERLAPS,
                    ),
                ],
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="bot_configurations_version_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
                name="bot_configurations_range_ordered",
            ),
            models.CheckConstraint(
                condition=Q(is_active=True, effective_to__isnull=True)
                | Q(is_active=False, effective_to__isnull=False),
                name="bot_configurations_active_iff_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} v{self.version}"
