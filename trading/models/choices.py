"""The trading schema's enumerations (each a CHECK in the database by choices_check)."""

from django.db import models

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


class RunMode(models.TextChoices):
    LIVE = "live"
    DRY_RUN = "dry_run"
    BACKTEST = "backtest"
    IMPORTED = "imported"  # history an importer brought in (importers/): one run per import


class RunStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"
    CRASHED = "crashed"  # heartbeats stopped, or the bot opened a new run without closing it


class DerivedTimeframe(models.TextChoices):
    """The timeframes derived from the one-minute candles (trading.services.candles_derived)."""

    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
