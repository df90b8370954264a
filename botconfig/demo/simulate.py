"""Trades simulated on the price path, so their prices, exits and fees agree with the candles.

A trade enters at a candle's open and leaves at the open after the close that reached its
take-profit (exit reason ``roi``), stop-loss or trailing stop, or when the strategy's exit signal
comes (``signal``). One symbol's trades follow one another; a trade still running at the end of
the path stays open.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from botconfig.demo.market import Path, rng
from botconfig.demo.specs import HUNDRED, ONE, PRICE, USD, ZERO, BotSpec, Market
from trading.models import OrderSide, OrderType, TradeSide


@dataclass(frozen=True)
class Fill:
    quantity: Decimal
    price: Decimal
    fee: Decimal
    at: datetime


@dataclass(frozen=True)
class Execution:
    """One order's fills: the order's filled quantity, average price and fees follow from them."""

    order_type: OrderType
    side: OrderSide
    quantity: Decimal
    submitted_at: datetime
    fills: tuple[Fill, ...]
    exchange_order_id: str
    price: Decimal | None = None
    stop_price: Decimal | None = None

    @property
    def filled_quantity(self) -> Decimal:
        return sum((f.quantity for f in self.fills), ZERO)

    @property
    def avg_price(self) -> Decimal:
        notional = sum((f.quantity * f.price for f in self.fills), ZERO)
        return (notional / self.filled_quantity).quantize(PRICE)

    @property
    def fees_usd(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO).quantize(USD)

    @property
    def filled_at(self) -> datetime:
        return self.fills[-1].at


@dataclass
class SimTrade:
    spec: BotSpec
    symbol: str
    path: Path
    side: TradeSide
    signal_price: Decimal
    strength: Decimal
    entry_tag: str
    stop_loss: Decimal
    take_profit: Decimal
    trailing_pct: Decimal
    entry: Execution
    highest: Decimal
    lowest: Decimal
    trailing_price: Decimal | None = None
    exit: Execution | None = None
    exit_reason: str = ""
    trade_id: str = ""

    @property
    def sign(self) -> int:
        return 1 if self.side == TradeSide.LONG else -1

    @property
    def quantity(self) -> Decimal:
        return self.entry.quantity

    @property
    def entry_price(self) -> Decimal:
        return self.entry.avg_price

    @property
    def exit_price(self) -> Decimal | None:
        return self.exit.avg_price if self.exit else None

    @property
    def entry_time(self) -> datetime:
        return self.entry.filled_at

    @property
    def exit_time(self) -> datetime | None:
        return self.exit.filled_at if self.exit else None

    @property
    def fees_usd(self) -> Decimal:
        return self.entry.fees_usd + (self.exit.fees_usd if self.exit else ZERO)

    @property
    def pnl_usd(self) -> Decimal | None:
        """Net of fees: (exit - entry) x quantity for a long, (entry - exit) x quantity short."""
        if self.exit is None:
            return None
        gross = (self.exit.avg_price - self.entry_price) * self.quantity * self.sign
        return (gross - self.fees_usd).quantize(USD)

    def unrealized_at(self, price: Decimal) -> Decimal:
        return ((price - self.entry_price) * self.quantity * self.sign).quantize(USD)

    def margin(self) -> Decimal:
        return (self.entry_price * self.quantity / self.spec.leverage).quantize(USD)


def execute(
    draw: random.Random,
    spec: BotSpec,
    market: Market,
    *,
    order_type: OrderType,
    side: OrderSide,
    quantity: Decimal,
    price: Decimal,
    at: datetime,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
) -> Execution:
    """Fill ``quantity`` near ``price`` in one to three fills, the last at ``at``.

    A limit order fills at its price and pays the maker fee; the others slip a tick per fill.
    """
    maker = order_type == OrderType.LIMIT
    fee_rate = spec.maker_fee if maker else spec.taker_fee
    slip = ZERO if maker else market.tick * (1 if side == OrderSide.BUY else -1)
    parts: list[Decimal] = []
    remaining = quantity
    for _ in range(draw.choices((0, 1, 2), weights=(6, 3, 1))[0]):
        part = (remaining * Decimal(draw.randint(30, 60)) / HUNDRED).quantize(
            market.lot, ROUND_DOWN
        )
        if part <= 0 or part >= remaining:
            break
        parts.append(part)
        remaining -= part
    parts.append(remaining)
    submitted_at = at - timedelta(milliseconds=draw.randint(400, 2500))
    step = (at - submitted_at) / len(parts)
    fills = tuple(
        Fill(
            quantity=part,
            price=price + slip * k,
            fee=(part * (price + slip * k) * fee_rate).quantize(PRICE),
            at=at - step * (len(parts) - 1 - k),
        )
        for k, part in enumerate(parts)
    )
    return Execution(
        order_type=order_type,
        side=side,
        quantity=quantity,
        submitted_at=submitted_at,
        fills=fills,
        exchange_order_id=str(draw.randint(10**10, 10**11 - 1)),
        price=limit_price,
        stop_price=stop_price,
    )


EXIT_ORDER_TYPES = {
    "roi": OrderType.LIMIT,
    "stop_loss": OrderType.STOP,
    "trailing_stop": OrderType.MARKET,
    "signal": OrderType.MARKET,
}


def _pct(value: float) -> Decimal:
    return Decimal(str(value)) / HUNDRED


def _at(start: datetime, minute: int, draw: random.Random, seconds: tuple[int, int]) -> datetime:
    return start + timedelta(
        minutes=minute, seconds=draw.randint(*seconds), microseconds=draw.randint(0, 999_999)
    )


def simulate_trades(spec: BotSpec, symbol: str, path: Path, start: datetime) -> list[SimTrade]:
    """The trades of one bot in one symbol over the whole path (see the module's docstring)."""
    draw = rng("trades", spec.draw_name or spec.bot_id, symbol)
    market, closes = path.market, path.closes
    risk = spec.risk
    sl_pct, tp_pct = _pct(risk["stop_loss_pct"]), _pct(risk["take_profit_pct"])
    trail_at_pct = _pct(risk["trailing_stop"]["activation_pct"])
    trail_pct = _pct(risk["trailing_stop"]["distance_pct"])
    # The last candle is the current one: no exit happens in it.
    end = len(closes) - 1 - spec.quiet_minutes
    trades: list[SimTrade] = []
    free_from = 0  # the first minute after the last exit
    keep_open = symbol in spec.open_symbols
    final = False
    i = draw.randint(30, spec.gap_minutes[1])
    while True:
        if i >= end:
            # A symbol meant to end with an open trade enters once more, late enough to still be
            # in it; the path alone decides whether it is.
            if not keep_open or final or free_from + 30 >= end:
                break
            i, final = max(free_from + 30, end - draw.randint(20, 240)), True
        side = TradeSide.LONG if draw.random() < spec.long_share else TradeSide.SHORT
        sign = 1 if side == TradeSide.LONG else -1
        if not final and path.trend_at(i) != sign and draw.random() < spec.trend_skill:
            i += draw.randint(30, 180)  # the strategy's trend filter says: not now
            continue
        price, tick = path.open_at(i), market.tick
        sl = (price * (ONE - sign * sl_pct)).quantize(tick)
        tp = (price * (ONE + sign * tp_pct)).quantize(tick)
        trail_from = price * (ONE + sign * trail_at_pct)
        quantity = (Decimal(draw.randint(*spec.stake_usd)) / price).quantize(market.lot, ROUND_DOWN)
        limit = spec.entry_order_type == OrderType.LIMIT
        entry = execute(
            draw,
            spec,
            market,
            order_type=spec.entry_order_type,
            side=OrderSide.BUY if sign > 0 else OrderSide.SELL,
            quantity=quantity,
            price=price,
            at=_at(start, i, draw, (2, 50)),
            limit_price=price if limit else None,
        )
        trade = SimTrade(
            spec=spec,
            symbol=symbol,
            path=path,
            side=side,
            signal_price=price,
            strength=Decimal(draw.randint(55, 97)) / HUNDRED,
            entry_tag=draw.choice(spec.entry_tags),
            stop_loss=sl,
            take_profit=tp,
            trailing_pct=trail_pct * HUNDRED,
            entry=entry,
            highest=price,
            lowest=price,
        )
        exit_signal_at = end if final else i + draw.randint(*spec.hold_minutes)
        best, trail, reason, j = price, None, "", i
        for j in range(i, end):
            close = closes[j]
            trade.highest, trade.lowest = max(trade.highest, close), min(trade.lowest, close)
            if j >= exit_signal_at:
                reason = "signal"
            elif (close - sl) * sign <= 0:
                reason = "stop_loss"
            elif (close - tp) * sign >= 0:
                reason = "roi"
            elif (close - best) * sign > 0:
                best = close
                if (best - trail_from) * sign >= 0:
                    trail = (best * (ONE - sign * trail_pct)).quantize(tick)
            elif trail is not None and (close - trail) * sign <= 0:
                reason = "trailing_stop"
            if reason:
                break
        trade.trailing_price = trail
        trades.append(trade)
        if not reason:
            break
        order_type = EXIT_ORDER_TYPES[reason]
        trade.exit = execute(
            draw,
            spec,
            market,
            order_type=order_type,
            side=OrderSide.SELL if sign > 0 else OrderSide.BUY,
            quantity=quantity,
            price=closes[j],
            at=_at(start, j + 1, draw, (1, 20)),
            limit_price=tp if order_type == OrderType.LIMIT else None,
            stop_price=sl if order_type == OrderType.STOP else None,
        )
        trade.exit_reason = reason
        free_from = j + 1
        i = free_from + draw.randint(*spec.gap_minutes)
    return trades
