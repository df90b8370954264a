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
