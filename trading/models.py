"""The trading schema: bots and everything they do. See ../shared/design/SCHEMA.md.

Invariants live in the database (CHECK, UNIQUE, partial unique indexes, FKs with a chosen
ON DELETE), so that a row written by any client, ORM or raw SQL, obeys them.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from trading.db import (
    PctField,
    QuantityField,
    UsdField,
    UsdSumField,
    choices_check,
    schema_table,
)

SCHEMA = "trading"


class BotStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


class BotMode(models.TextChoices):
    LIVE = "live"
    PAPER = "paper"


class TradeSide(models.TextChoices):
    LONG = "long"
    SHORT = "short"


class TradeStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class TradeSource(models.TextChoices):
    LIVE = "live"
    PAPER = "paper"
    BACKTEST = "backtest"
    IMPORTED = "imported"


class PositionStatus(models.TextChoices):
    OPEN = "open"
    PARTIALLY_CLOSED = "partially_closed"
    CLOSED = "closed"


class OrderSide(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class OrderType(models.TextChoices):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


class Timeframe(models.TextChoices):
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"


class SignalDirection(models.TextChoices):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


class SignalOutcome(models.TextChoices):
    PENDING = "pending"
    WIN = "win"
    LOSS = "loss"
    BREAKEVEN = "breakeven"
    SKIPPED = "skipped"


class SnapshotType(models.TextChoices):
    PERIODIC = "periodic"
    TRADE = "trade"
    DAILY = "daily"
    MANUAL = "manual"
    IMPORTED = "imported"


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


class RunMode(models.TextChoices):
    LIVE = "live"
    DRY_RUN = "dry_run"
    BACKTEST = "backtest"
    IMPORTED = "imported"  # history an importer brought in (importers/): one run per import


class RunStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"
    CRASHED = "crashed"  # heartbeats stopped, or the bot opened a new run without closing it


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


class Position(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="positions")
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    side = models.CharField(max_length=8, choices=TradeSide.choices)
    status = models.CharField(
        max_length=20, choices=PositionStatus.choices, default=PositionStatus.OPEN
    )
    quantity = QuantityField(help_text="Quantity still open.")
    initial_quantity = QuantityField()
    avg_entry_price = QuantityField()
    current_price = QuantityField(null=True, blank=True)
    unrealized_pnl_usd = UsdField(default=0)
    realized_pnl_usd = UsdField(default=0)
    stop_loss = QuantityField(null=True, blank=True)
    take_profit = QuantityField(null=True, blank=True)
    trailing_stop_pct = PctField(null=True, blank=True)
    trailing_stop_price = QuantityField(null=True, blank=True)
    highest_price = QuantityField(null=True, blank=True)
    lowest_price = QuantityField(null=True, blank=True)
    leverage = PctField(default=1)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "positions")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "symbol", "exchange", "side"],
                condition=~Q(status=PositionStatus.CLOSED),
                name="positions_one_open_per_bot_symbol_side",
            ),
            choices_check("positions", "side", TradeSide),
            choices_check("positions", "status", PositionStatus),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="positions_quantity_gte_0"),
            models.CheckConstraint(
                condition=Q(initial_quantity__gt=0), name="positions_initial_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(quantity__lte=F("initial_quantity")),
                name="positions_quantity_lte_initial",
            ),
            models.CheckConstraint(
                condition=Q(avg_entry_price__gt=0), name="positions_avg_entry_price_positive"
            ),
            models.CheckConstraint(condition=Q(leverage__gt=0), name="positions_leverage_positive"),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=F("opened_at")),
                name="positions_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=~Q(status=PositionStatus.CLOSED) | Q(closed_at__isnull=False),
                name="positions_closed_has_closed_at",
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "status"], name="positions_bot_status_idx"),
            models.Index(fields=["symbol"], name="positions_symbol_idx"),
            # API lists, newest first, per bot and (for staff) across bots.
            models.Index(fields=["bot", "-opened_at"], name="positions_bot_opened_idx"),
            models.Index(fields=["-opened_at"], name="positions_opened_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.side} {self.symbol} ({self.status})"


class Trade(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="trades")
    trade_id = models.CharField(max_length=128, help_text="The bot's own id for the trade.")
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    side = models.CharField(max_length=8, choices=TradeSide.choices)
    quantity = QuantityField()
    entry_price = QuantityField()
    exit_price = QuantityField(null=True, blank=True)
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField(null=True, blank=True)
    fees_usd = UsdField(default=0)
    pnl_usd = UsdField(null=True, blank=True, help_text="Net of fees.")
    pnl_pct = PctField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TradeStatus.choices, default=TradeStatus.OPEN)
    source = models.CharField(max_length=16, choices=TradeSource.choices, default=TradeSource.LIVE)
    leverage = PctField(default=1)
    exit_reason = models.CharField(max_length=255, blank=True, default="")
    entry_tag = models.CharField(max_length=255, blank=True, default="")
    position = models.ForeignKey(
        Position, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    strategy_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "trades")
        ordering = ["-entry_time"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "trade_id"], name="trades_bot_trade_id_uniq"),
            choices_check("trades", "side", TradeSide),
            choices_check("trades", "status", TradeStatus),
            choices_check("trades", "source", TradeSource),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trades_quantity_positive"),
            models.CheckConstraint(
                condition=Q(entry_price__gt=0), name="trades_entry_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(exit_price__isnull=True) | Q(exit_price__gt=0),
                name="trades_exit_price_positive",
            ),
            models.CheckConstraint(condition=Q(leverage__gt=0), name="trades_leverage_positive"),
            models.CheckConstraint(
                condition=Q(exit_time__isnull=True) | Q(exit_time__gte=F("entry_time")),
                name="trades_exit_after_entry",
            ),
            models.CheckConstraint(
                condition=~Q(status=TradeStatus.CLOSED)
                | Q(exit_price__isnull=False, exit_time__isnull=False, pnl_usd__isnull=False),
                name="trades_closed_has_exit_and_pnl",
            ),
        ]
        indexes = [
            # Lists, newest first, per bot and across bots.
            models.Index(fields=["bot", "-entry_time"], name="trades_bot_entry_idx"),
            models.Index(fields=["-entry_time"], name="trades_entry_idx"),
            # Metrics read a bot's closed trades in exit order (METRICS.md).
            models.Index(
                fields=["bot", "exit_time"],
                condition=Q(status=TradeStatus.CLOSED),
                name="trades_bot_closed_exit_idx",
            ),
            models.Index(fields=["symbol", "-entry_time"], name="trades_symbol_entry_idx"),
            models.Index(
                fields=["bot", "status"],
                condition=Q(status=TradeStatus.OPEN),
                name="trades_bot_open_idx",
            ),
            # A run's figures (analytics) read its closed trades in exit order, index only, as
            # trades_bot_closed_curve_idx (0004) serves a bot's.
            models.Index(
                fields=["run", "exit_time", "id"],
                include=["pnl_usd", "fees_usd", "quantity", "entry_price", "entry_time", "source"],
                condition=Q(status=TradeStatus.CLOSED, run__isnull=False),
                name="trades_run_closed_curve_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.trade_id}"


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="orders")
    client_order_id = models.CharField(max_length=128)
    exchange_order_id = models.CharField(max_length=128, blank=True, default="")
    trade = models.ForeignKey(
        Trade, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    position = models.ForeignKey(
        Position, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    order_type = models.CharField(max_length=16, choices=OrderType.choices)
    quantity = QuantityField()
    price = QuantityField(null=True, blank=True)
    stop_price = QuantityField(null=True, blank=True)
    filled_quantity = QuantityField(default=0)
    avg_fill_price = QuantityField(null=True, blank=True)
    fees_usd = UsdField(default=0)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    retry_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "orders")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "client_order_id"], name="orders_bot_client_order_id_uniq"
            ),
            choices_check("orders", "side", OrderSide),
            choices_check("orders", "order_type", OrderType),
            choices_check("orders", "status", OrderStatus),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=F("quantity")),
                name="orders_filled_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0), name="orders_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(stop_price__isnull=True) | Q(stop_price__gt=0),
                name="orders_stop_price_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-created_at"], name="orders_bot_created_idx"),
            models.Index(fields=["-created_at"], name="orders_created_idx"),
            models.Index(fields=["bot", "status"], name="orders_bot_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.client_order_id}"


class OrderFill(models.Model):
    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills", db_index=False)
    fill_id = models.CharField(max_length=128)
    quantity = QuantityField()
    price = QuantityField()
    fee = QuantityField(default=0)
    fee_currency = models.CharField(max_length=16, blank=True, default="")
    filled_at = models.DateTimeField()

    class Meta:
        db_table = schema_table(SCHEMA, "order_fills")
        ordering = ["filled_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "fill_id"], name="order_fills_order_fill_uniq"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="order_fills_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="order_fills_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.fill_id}"


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


class DerivedTimeframe(models.TextChoices):
    """The timeframes derived from the one-minute candles (trading.services.candles_derived)."""

    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"


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


class Signal(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="signals")
    symbol = models.CharField(max_length=64)
    signal_type = models.CharField(max_length=50)
    direction = models.CharField(
        max_length=8, choices=SignalDirection.choices, default=SignalDirection.NEUTRAL
    )
    strength = PctField(null=True, blank=True)
    price = QuantityField(null=True, blank=True)
    generated_at = models.DateTimeField()
    filters_passed = models.JSONField(default=list, blank=True)
    filters_failed = models.JSONField(default=list, blank=True)
    validated = models.BooleanField(default=False)
    executed = models.BooleanField(default=False)
    trade = models.ForeignKey(
        Trade, on_delete=models.SET_NULL, null=True, blank=True, related_name="signals"
    )
    outcome = models.CharField(
        max_length=16, choices=SignalOutcome.choices, default=SignalOutcome.PENDING
    )
    outcome_pnl_usd = UsdField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "signals")
        ordering = ["-generated_at"]
        constraints = [
            choices_check("signals", "direction", SignalDirection),
            choices_check("signals", "outcome", SignalOutcome),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0), name="signals_price_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-generated_at"], name="signals_bot_generated_idx"),
            models.Index(fields=["-generated_at"], name="signals_generated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.signal_type} {self.symbol}"


class AccountBalance(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="balances")
    ts = models.DateTimeField()
    balance_usd = UsdField()
    equity_usd = UsdField()
    margin_used_usd = UsdField(default=0)
    available_margin_usd = UsdField(null=True, blank=True)
    unrealized_pnl_usd = UsdField(default=0)
    snapshot_type = models.CharField(
        max_length=16, choices=SnapshotType.choices, default=SnapshotType.PERIODIC
    )
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "account_balance")
        ordering = ["-ts"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "ts", "snapshot_type"], name="account_balance_bot_ts_type_uniq"
            ),
            choices_check("account_balance", "snapshot_type", SnapshotType),
            models.CheckConstraint(
                condition=Q(margin_used_usd__gte=0), name="account_balance_margin_gte_0"
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-ts"], name="account_balance_bot_ts_idx"),
            models.Index(fields=["-ts"], name="account_balance_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.ts:%Y-%m-%d %H:%M} {self.equity_usd}"


class RiskMetric(models.Model):
    """One row per bot per UTC day, rolled up from trades and balances (METRICS.md)."""

    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, db_index=False, related_name="risk_metrics"
    )
    date = models.DateField()
    trades_closed = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    win_rate = PctField(null=True, blank=True)
    gross_profit_usd = UsdSumField(default=0)
    gross_loss_usd = UsdSumField(default=0)
    net_pnl_usd = UsdSumField(default=0)
    fees_usd = UsdSumField(default=0)
    profit_factor = PctField(null=True, blank=True)
    expectancy_usd = UsdField(null=True, blank=True)
    max_drawdown_pct = PctField(null=True, blank=True)
    sharpe_30d = PctField(null=True, blank=True)
    sortino_30d = PctField(null=True, blank=True)
    exposure_usd = UsdSumField(default=0)
    equity_close_usd = UsdSumField(null=True, blank=True)
    equity_peak_usd = UsdSumField(
        null=True,
        blank=True,
        help_text="Running peak of the realized equity curve up to the end of the day; the next "
        "day's rollup continues the drawdown from it instead of rereading all history.",
    )
    computed_at = models.DateTimeField()

    class Meta:
        db_table = schema_table(SCHEMA, "risk_metrics")
        ordering = ["-date", "bot"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "date"], name="risk_metrics_bot_date_uniq"),
            models.CheckConstraint(
                condition=Q(wins__lte=F("trades_closed")) & Q(losses__lte=F("trades_closed")),
                name="risk_metrics_counts_consistent",
            ),
            models.CheckConstraint(
                condition=Q(gross_loss_usd__gte=0) & Q(gross_profit_usd__gte=0),
                name="risk_metrics_gross_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(win_rate__isnull=True) | Q(win_rate__gte=0, win_rate__lte=1),
                name="risk_metrics_win_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.date}"


class RiskMetricsBacklog(models.Model):
    """A bot's risk_metrics rows that are out of date from ``since`` on, because trades were
    written for a day the scheduled rollup no longer redoes (before yesterday): a late trade, a
    past trade corrected, an import. Written in the same statement or transaction as the trades,
    so it cannot be lost with a queue message; the analytics rollup redoes the days and deletes
    the row in one transaction."""

    bot = models.OneToOneField(
        Bot, on_delete=models.CASCADE, primary_key=True, related_name="risk_metrics_backlog"
    )
    since = models.DateField(help_text="The first UTC day whose row must be rolled up again.")
    marked_at = models.DateTimeField(help_text="When trades last moved ``since`` or set it.")

    class Meta:
        db_table = schema_table(SCHEMA, "risk_metrics_backlog")
        verbose_name_plural = "risk metrics backlog"

    def __str__(self) -> str:
        return f"{self.bot_id} from {self.since}"


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


# The prediction cache lives in its own module (this one is long enough); imported here so that
# Django finds it as trading's model.
from trading.models_predictions import Prediction as Prediction  # noqa: E402
