"""The trading schema: bots and everything they do. See ../shared/design/SCHEMA.md.

Invariants live in the database (CHECK, UNIQUE, partial unique indexes, FKs with a chosen
ON DELETE), so that a row written by any client, ORM or raw SQL, obeys them.
"""

from trading.models.activity import (
    AccountBalance,
    Order,
    OrderFill,
    Position,
    Signal,
    Trade,
)
from trading.models.bots import (
    ApiToken,
    Bot,
    BotRun,
    IdempotencyKey,
    run_field,
)
from trading.models.choices import (
    SCHEMA,
    BotMode,
    BotStatus,
    DerivedTimeframe,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionStatus,
    RunMode,
    RunStatus,
    SignalDirection,
    SignalOutcome,
    SnapshotType,
    Timeframe,
    TradeSide,
    TradeSource,
    TradeStatus,
)
from trading.models.market import (
    DerivedCandle,
    DerivedCandleBacklog,
    MarketData,
)
from trading.models.predictions import Prediction
from trading.models.risk import (
    RiskMetric,
    RiskMetricsBacklog,
)

__all__ = [
    "SCHEMA",
    "AccountBalance",
    "ApiToken",
    "Bot",
    "BotMode",
    "BotRun",
    "BotStatus",
    "DerivedCandle",
    "DerivedCandleBacklog",
    "DerivedTimeframe",
    "IdempotencyKey",
    "MarketData",
    "Order",
    "OrderFill",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionStatus",
    "Prediction",
    "RiskMetric",
    "RiskMetricsBacklog",
    "RunMode",
    "RunStatus",
    "Signal",
    "SignalDirection",
    "SignalOutcome",
    "SnapshotType",
    "Timeframe",
    "Trade",
    "TradeSide",
    "TradeSource",
    "TradeStatus",
    "run_field",
]
