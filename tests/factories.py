"""Plain factory functions for tests: explicit values, no randomness, every field overridable."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from trading.models import Bot, MarketData, Order, OrderFill, Position, Signal, Trade
from trading.services.partitions import market_data_partitions_create, month_of

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
    # The ingest paths make a month's partition on demand; a row written by the ORM needs it too.
    market_data_partitions_create(months=[month_of(values["ts"])])
    return MarketData.objects.create(**values)


def make_order(bot: Bot, **fields: Any) -> Order:
    values: dict[str, Any] = {
        "bot": bot,
        "client_order_id": f"o-{next(_seq)}",
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "limit",
        "quantity": Decimal("1"),
        "price": Decimal("60000"),
    }
    values.update(fields)
    return Order.objects.create(**values)


def make_fill(order: Order, **fields: Any) -> OrderFill:
    values: dict[str, Any] = {
        "order": order,
        "fill_id": f"f-{next(_seq)}",
        "quantity": Decimal("0.5"),
        "price": Decimal("60000"),
        "filled_at": T0,
    }
    values.update(fields)
    return OrderFill.objects.create(**values)


def make_signal(bot: Bot, **fields: Any) -> Signal:
    values: dict[str, Any] = {
        "bot": bot,
        "symbol": "BTC/USDT",
        "signal_type": "breakout",
        "direction": "long",
        "generated_at": T0,
    }
    values.update(fields)
    return Signal.objects.create(**values)


def make_balance(bot: Bot, **fields: Any) -> Any:
    """An account_balance row (the equity a bot reported)."""
    from trading.models import AccountBalance

    values: dict[str, Any] = {
        "bot": bot,
        "ts": T0,
        "balance_usd": Decimal("10000"),
        "equity_usd": Decimal("10000"),
    }
    values.update(fields)
    return AccountBalance.objects.create(**values)
