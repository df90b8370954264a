"""Model rows for the simulated trades: positions, trades, orders, fills, signals, balances."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from audit.models import RiskEvent, SystemEvent
from botconfig.demo.market import Path, rng
from botconfig.demo.simulate import Execution, SimTrade
from botconfig.demo.specs import EXCHANGE, HISTORY_DAYS, HUNDRED, PCT, ZERO, BotSpec
from trading.models import (
    AccountBalance,
    Bot,
    BotMode,
    Order,
    OrderFill,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Signal,
    SignalDirection,
    SignalOutcome,
    SnapshotType,
    Trade,
    TradeSide,
    TradeSource,
    TradeStatus,
)


@dataclass
class Rows:
    """Everything the demo writes in bulk, in the order it is written (foreign keys first)."""

    positions: list[Position] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[OrderFill] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    balances: list[AccountBalance] = field(default_factory=list)
    system_events: list[SystemEvent] = field(default_factory=list)
    risk_events: list[RiskEvent] = field(default_factory=list)


def filled_order(
    bot: Bot, execution: Execution, client_order_id: str, symbol: str, **fields: Any
) -> tuple[Order, list[OrderFill]]:
    """A filled order and its fills: filled quantity, average price and fees follow from them."""
    order = Order(
        bot=bot,
        client_order_id=client_order_id,
        exchange_order_id=execution.exchange_order_id,
        symbol=symbol,
        side=execution.side,
        order_type=execution.order_type,
        quantity=execution.quantity,
        price=execution.price,
        stop_price=execution.stop_price,
        filled_quantity=execution.filled_quantity,
        avg_fill_price=execution.avg_price,
        fees_usd=execution.fees_usd,
        status=OrderStatus.FILLED,
        submitted_at=execution.submitted_at,
        filled_at=execution.filled_at,
        **fields,
    )
    fills = [
        OrderFill(
            order=order,
            fill_id=f"{execution.exchange_order_id}-{k}",
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            fee_currency="USDT",
            filled_at=fill.at,
        )
        for k, fill in enumerate(execution.fills, start=1)
    ]
    return order, fills


def _outcome(pnl: Decimal | None) -> SignalOutcome:
    if pnl is None:
        return SignalOutcome.PENDING
    if pnl == 0:
        return SignalOutcome.BREAKEVEN
    return SignalOutcome.WIN if pnl > 0 else SignalOutcome.LOSS


def trade_rows(rows: Rows, bot: Bot, sim: SimTrade) -> None:
    """The position, trade, orders, fills and signal of one simulated trade."""
    spec = sim.spec
    draw = rng("rows", sim.trade_id)
    pnl = sim.pnl_usd
    last_price = sim.path.closes[-1]
    is_open = sim.exit is None
    position = Position(
        bot=bot,
        symbol=sim.symbol,
        exchange=EXCHANGE,
        side=sim.side,
        status=PositionStatus.OPEN if is_open else PositionStatus.CLOSED,
        quantity=sim.quantity if is_open else ZERO,
        initial_quantity=sim.quantity,
        avg_entry_price=sim.entry_price,
        current_price=last_price if is_open else sim.exit_price,
        unrealized_pnl_usd=sim.unrealized_at(last_price) if is_open else ZERO,
        realized_pnl_usd=ZERO if pnl is None else pnl,
        stop_loss=sim.stop_loss,
        take_profit=sim.take_profit,
        trailing_stop_pct=sim.trailing_pct,
        trailing_stop_price=sim.trailing_price,
        highest_price=sim.highest,
        lowest_price=sim.lowest,
        leverage=spec.leverage,
        opened_at=sim.entry_time,
        closed_at=sim.exit_time,
        metadata={"trade_id": sim.trade_id},
    )
    trade = Trade(
        bot=bot,
        trade_id=sim.trade_id,
        symbol=sim.symbol,
        exchange=EXCHANGE,
        side=sim.side,
        quantity=sim.quantity,
        entry_price=sim.entry_price,
        exit_price=sim.exit_price,
        entry_time=sim.entry_time,
        exit_time=sim.exit_time,
        fees_usd=sim.fees_usd,
        pnl_usd=pnl,
        # Of the position's value at entry; leverage left out.
        pnl_pct=None
        if pnl is None
        else (pnl / (sim.entry_price * sim.quantity) * HUNDRED).quantize(PCT),
        status=TradeStatus.OPEN if is_open else TradeStatus.CLOSED,
        source=TradeSource.LIVE if spec.mode == BotMode.LIVE else TradeSource.PAPER,
        leverage=spec.leverage,
        exit_reason=sim.exit_reason,
        entry_tag=sim.entry_tag,
        position=position,
        strategy_data={
            "timeframe": spec.config["timeframe"],
            "signal_strength": str(sim.strength),
            "stop_loss": str(sim.stop_loss),
            "take_profit": str(sim.take_profit),
        },
    )
    rows.positions.append(position)
    rows.trades.append(trade)
    for execution, suffix in ((sim.entry, "entry"), (sim.exit, "exit")):
        if execution is not None:
            order, fills = filled_order(
                bot,
                execution,
                f"{sim.trade_id}-{suffix}",
                sim.symbol,
                trade=trade,
                position=position,
            )
            rows.orders.append(order)
            rows.fills += fills
    if is_open:  # its protective stop waits on the exchange
        rows.orders.append(
            Order(
                bot=bot,
                client_order_id=f"{sim.trade_id}-sl",
                exchange_order_id=str(draw.randint(10**10, 10**11 - 1)),
                trade=trade,
                position=position,
                symbol=sim.symbol,
                side=OrderSide.SELL if sim.side == TradeSide.LONG else OrderSide.BUY,
                order_type=OrderType.STOP,
                quantity=sim.quantity,
                stop_price=sim.stop_loss,
                status=OrderStatus.SUBMITTED,
                submitted_at=sim.entry_time + timedelta(milliseconds=draw.randint(200, 900)),
            )
        )
    rows.signals.append(
        Signal(
            bot=bot,
            symbol=sim.symbol,
            signal_type=spec.signal_type,
            direction=SignalDirection.LONG if sim.side == TradeSide.LONG else SignalDirection.SHORT,
            strength=sim.strength,
            price=sim.signal_price,
            generated_at=sim.entry.submitted_at - timedelta(seconds=draw.randint(1, 20)),
            filters_passed=sorted(spec.filters),
            validated=True,
            executed=True,
            trade=trade,
            outcome=_outcome(pnl),
            outcome_pnl_usd=pnl,
            metadata={"entry_tag": sim.entry_tag},
        )
    )


def skipped_signal_rows(
    rows: Rows, bot: Bot, spec: BotSpec, paths: dict[str, Path], start: datetime
) -> None:
    """Signals the bot saw and let pass because a filter failed."""
    draw = rng("skipped", spec.draw_name or spec.bot_id)
    for _ in range(spec.skipped_signals):
        i = draw.randint(1, HISTORY_DAYS * 24 * 60 - 1)
        symbol, key = draw.choice(spec.symbols)
        long = draw.random() < spec.long_share
        failed = sorted(draw.sample(spec.filters, k=draw.choice((1, 1, 2))))
        rows.signals.append(
            Signal(
                bot=bot,
                symbol=symbol,
                signal_type=spec.signal_type,
                direction=SignalDirection.LONG if long else SignalDirection.SHORT,
                strength=Decimal(draw.randint(20, 70)) / HUNDRED,
                price=paths[key].open_at(i),
                generated_at=start + timedelta(minutes=i, seconds=draw.randint(0, 59)),
                filters_passed=sorted(set(spec.filters) - set(failed)),
                filters_failed=failed,
                outcome=SignalOutcome.SKIPPED,
            )
        )


def balance_rows(
    rows: Rows, bot: Bot, sims: list[SimTrade], start: datetime, anchor: datetime
) -> AccountBalance:
    """Hourly balances over the history; returns the last.

    balance = initial capital + the pnl of the trades closed by then (METRICS.md's realized
    equity); equity = balance + the unrealized pnl of the trades open then, at that minute's open.
    """
    last_hour = anchor.replace(minute=0)
    closed = sorted(
        (s for s in sims if s.exit_time is not None), key=lambda s: s.exit_time or anchor
    )
    realized, n_closed = ZERO, 0
    for k in range(HISTORY_DAYS * 24 - 1, -1, -1):
        ts = last_hour - timedelta(hours=k)
        while n_closed < len(closed) and (closed[n_closed].exit_time or anchor) <= ts:
            realized += closed[n_closed].pnl_usd or ZERO
            n_closed += 1
        minute = int((ts - start) / timedelta(minutes=1))
        running = [
            s for s in sims if s.entry_time <= ts and (s.exit_time is None or s.exit_time > ts)
        ]
        unrealized = sum((s.unrealized_at(s.path.open_at(minute)) for s in running), ZERO)
        margin = sum((s.margin() for s in running), ZERO)
        cash = bot.initial_capital_usd + realized
        rows.balances.append(
            AccountBalance(
                bot=bot,
                ts=ts,
                balance_usd=cash,
                equity_usd=cash + unrealized,
                margin_used_usd=margin,
                available_margin_usd=cash + unrealized - margin,
                unrealized_pnl_usd=unrealized,
                snapshot_type=SnapshotType.PERIODIC,
            )
        )
    return rows.balances[-1]
