"""The prediction cache (issue 18, item 5): what a model predicted for a market's candle, and,
once that candle came, how right it was. See docs/DESIGN.md, "Predictions".

A prediction belongs to the bot whose token wrote it (its bot_id): a bot reads only its own.
Natural key: (bot, model_name, model_version, symbol, exchange, timeframe, target_ts, horizon),
so a repeated write changes nothing and a corrected one replaces the row in place.
"""

from django.db import models
from django.db.models import Q

from trading.db import QuantityField, choices_check, schema_table
from trading.models.bots import Bot
from trading.models.choices import SCHEMA, Timeframe


class Prediction(models.Model):
    """One predicted close: ``value`` for the ``timeframe`` candle opening at ``target_ts``,
    made ``horizon`` candles ahead (the base the direction is judged from is the close of the
    candle ``horizon`` periods before the target)."""

    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, db_index=False, related_name="predictions"
    )
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=64)
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices)
    target_ts = models.DateTimeField(help_text="Open time (UTC) of the candle predicted.")
    horizon = models.PositiveIntegerField(help_text="Candles ahead the prediction was made.")
    value = QuantityField(help_text="The predicted close.")
    confidence = models.DecimalField(max_digits=7, decimal_places=6, null=True, blank=True)
    features_hash = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # The score, set once the target candle is stored (trading.services.predictions).
    actual = QuantityField(null=True, blank=True, help_text="The target candle's close.")
    error = QuantityField(null=True, blank=True, help_text="value - actual.")
    hit = models.BooleanField(
        null=True, blank=True, help_text="Direction from the base candle's close right."
    )
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "predictions")
        ordering = ["target_ts", "id"]
        constraints = [
            # The natural key, ordered for the read by (bot, model, symbol, target_ts).
            models.UniqueConstraint(
                fields=[
                    "bot",
                    "model_name",
                    "symbol",
                    "target_ts",
                    "model_version",
                    "exchange",
                    "timeframe",
                    "horizon",
                ],
                name="predictions_natural_key",
            ),
            choices_check("predictions", "timeframe", Timeframe),
            models.CheckConstraint(condition=Q(horizon__gte=1), name="predictions_horizon_gte_1"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="predictions_confidence_0_1",
            ),
            models.CheckConstraint(
                condition=~Q(model_name="") & ~Q(model_version=""),
                name="predictions_model_named",
            ),
            models.CheckConstraint(
                condition=Q(scored_at__isnull=True, actual__isnull=True, error__isnull=True)
                | Q(scored_at__isnull=False, actual__isnull=False, error__isnull=False),
                name="predictions_scored_whole",
            ),
        ]
        indexes = [
            # The scoring sweep: unscored rows by target time.
            models.Index(
                fields=["target_ts"],
                condition=Q(scored_at__isnull=True),
                name="predictions_unscored_idx",
            ),
            # The score read per model and version.
            models.Index(
                fields=["model_name", "model_version"],
                condition=Q(scored_at__isnull=False),
                name="predictions_scored_idx",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.model_name}@{self.model_version} {self.symbol} {self.target_ts:%Y-%m-%d %H:%M}"
        )
