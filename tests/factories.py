"""Plain factory functions for tests: explicit values, no randomness, every field overridable."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from trading.models import Bot, MarketData, Position, Trade

_seq = count(1)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def make_bot(bot_id: str | None = None, **fields: Any) -> Bot:
    values: dict[str, Any] = {
        "bot_id": bot_id or f"bot_{next(_seq):03d}",
        "name": "Test bot",
        "strategy_type": "momentum",
        "exchange": "binance",
        "initial_capital_usd": Decimal("10000"),
    }
    values.update(fields)
    return Bot.objects.create(**values)


def make_trade(bot: Bot, **fields: Any) -> Trade:
    values: dict[str, Any] = {
        "bot": bot,
        "trade_id": f"t-{next(_seq)}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": Decimal("0.5"),
        "entry_price": Decimal("60000"),
        "entry_time": T0,
        "status": "open",
    }
    values.update(fields)
    return Trade.objects.create(**values)


def make_closed_trade(bot: Bot, *, pnl_usd: Decimal, **fields: Any) -> Trade:
    values: dict[str, Any] = {
        "status": "closed",
        "exit_price": Decimal("61000"),
        "exit_time": T0 + timedelta(hours=1),
        "pnl_usd": pnl_usd,
    }
    values.update(fields)
    return make_trade(bot, **values)


def make_position(bot: Bot, **fields: Any) -> Position:
    values: dict[str, Any] = {
        "bot": bot,
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": Decimal("1"),
        "initial_quantity": Decimal("1"),
        "avg_entry_price": Decimal("60000"),
        "opened_at": T0,
    }
    values.update(fields)
    return Position.objects.create(**values)


def make_candle(**fields: Any) -> MarketData:
    values: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "ts": T0,
        "open": Decimal("100"),
        "high": Decimal("110"),
        "low": Decimal("90"),
        "close": Decimal("105"),
        "volume": Decimal("12.5"),
    }
    values.update(fields)
    return MarketData.objects.create(**values)
