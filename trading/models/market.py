"""Market data: the candles bots send (partitioned by month) and the derived timeframes."""

from django.db import models
from django.db.models import F, Q

from trading.db import (
    QuantityField,
    choices_check,
    schema_table,
)
from trading.models.choices import SCHEMA, DerivedTimeframe, Timeframe


class MarketData(models.Model):
    """One candle. Shared by all bots: the same candle from two bots is stored once."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices)
    ts = models.DateTimeField(help_text="Candle open time (UTC).")
    open = QuantityField()
    high = QuantityField()
    low = QuantityField()
    close = QuantityField()
    volume = QuantityField(default=0)
    indicators = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "market_data")
        verbose_name_plural = "market data"
        ordering = ["symbol", "exchange", "timeframe", "ts"]
        constraints = [
            # Also the index every range scan uses: (symbol, exchange, timeframe, ts).
            models.UniqueConstraint(
                fields=["symbol", "exchange", "timeframe", "ts"], name="market_data_candle_uniq"
            ),
            choices_check("market_data", "timeframe", Timeframe),
            models.CheckConstraint(
                condition=Q(high__gte=F("low")), name="market_data_high_gte_low"
            ),
            models.CheckConstraint(
                condition=Q(high__gte=F("open")) & Q(high__gte=F("close")),
                name="market_data_high_is_highest",
            ),
            models.CheckConstraint(
                condition=Q(low__lte=F("open")) & Q(low__lte=F("close")),
                name="market_data_low_is_lowest",
            ),
            models.CheckConstraint(condition=Q(low__gt=0), name="market_data_prices_positive"),
            models.CheckConstraint(condition=Q(volume__gte=0), name="market_data_volume_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.exchange} {self.timeframe} {self.ts:%Y-%m-%d %H:%M}"


class DerivedCandle(models.Model):
    """A candle of a higher timeframe derived from the market's stored 1m candles: the open of
    its first minute, the close of its last, the highest high, the lowest low, the volumes'
    sum. Kept apart from market_data (what bots sent), which wins over it where both hold the
    bucket. ``minutes``: how many 1m candles it was derived from (fewer than the timeframe
    holds where minutes are missing)."""

    pk = models.CompositePrimaryKey("symbol", "exchange", "timeframe", "ts")
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    timeframe = models.CharField(max_length=4, choices=DerivedTimeframe.choices)
    ts = models.DateTimeField(help_text="Bucket open time (UTC).")
    open = QuantityField()
    high = QuantityField()
    low = QuantityField()
    close = QuantityField()
    # A sum of up to 1,440 volumes of NUMERIC(28, 10): 10 more digits before the point.
    volume = models.DecimalField(max_digits=38, decimal_places=10)
    minutes = models.PositiveIntegerField()
    # 1h, 4h and 1d: the candle as GET market-data/ writes it, so a long read concatenates it.
    candle_json = models.TextField(null=True, blank=True)  # noqa: DJ001 - null: none kept

    class Meta:
        db_table = schema_table(SCHEMA, "market_candles_derived")
        constraints = [
            choices_check("market_candles_derived", "timeframe", DerivedTimeframe),
            models.CheckConstraint(
                condition=Q(minutes__gt=0), name="market_candles_derived_minutes_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.exchange} {self.timeframe} {self.ts:%Y-%m-%d %H:%M} (derived)"


class DerivedCandleBacklog(models.Model):
    """Minutes of a market whose derived candles are not brought up to date yet: written by
    the 1m ingest in its own transaction (one row per market and stretch of a batch), taken
    and worked off by ``derived_candles_catch_up`` (at a read of the market, and by beat)."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()

    class Meta:
        db_table = schema_table(SCHEMA, "market_candles_backlog")
        indexes = [
            models.Index(fields=["symbol", "exchange"], name="market_candles_backlog_market")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_ts__gte=F("first_ts")), name="market_candles_backlog_span"
            )
        ]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.exchange} {self.first_ts:%Y-%m-%d %H:%M}..{self.last_ts:%H:%M}"
