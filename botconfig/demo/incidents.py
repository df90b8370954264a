"""What went wrong now and then: a refused and a failed order, limit orders that expired,
system events, and risk events that agree with the trades and heartbeats they describe."""

import random
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from audit.models import RiskAction, RiskEvent, RiskEventType, Severity, SystemEvent
from botconfig.demo.market import Path, rng
from botconfig.demo.rows import Rows
from botconfig.demo.simulate import SimTrade
from botconfig.demo.specs import DEMO_BOT_IDS, EXCHANGE, HISTORY_DAYS, SPECS, ZERO, spec_for
from trading.models import (
    Bot,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Signal,
    SignalDirection,
    SignalOutcome,
)

WARN_AT = Decimal("0.75")  # risk.warn_at_pct of the configurations


def incident_rows(
    rows: Rows,
    bots: dict[str, Bot],
    sims: dict[str, list[SimTrade]],
    paths: dict[str, Path],
    start: datetime,
    now: datetime,
) -> None:
    draw = rng("incidents")
    for spec in SPECS:
        rows.system_events.append(
            SystemEvent(
                ts=start + timedelta(minutes=draw.randint(1, 20)),
                bot=bots[spec.bot_id],
                component="runner",
                event_type="bot_started",
                message=f"{spec.bot_id} started: {spec.mode}, {EXCHANGE} "
                f"{spec.config['exchange']['market_type']}",
                details={"strategy": spec.strategy_type, "symbols": spec.config["symbols"]},
            )
        )
    _refused_order(rows, bots["demo_momentum"], paths["SOL"], start)
    _expired_orders(rows, bots["demo_momentum"], paths, start, draw)
    _exchange_trouble(rows, bots["demo_shortseller"], paths["ETH"], start)
    _daily_loss_warnings(rows, bots, sims)
    _stale_heartbeat(rows, bots["demo_lxalgo"], now)
    rows.system_events += [
        SystemEvent(
            ts=now,
            bot=bots["demo_momentum"],
            component="runner",
            event_type="config_reloaded",
            message="demo_momentum loaded configuration version 2",
            details={"version": 2},
        ),
        SystemEvent(
            ts=now.replace(hour=0, minute=5, second=0, microsecond=0) - timedelta(days=1),
            component="scheduler",
            event_type="daily_rollup",
            message=f"risk metrics rolled up for {len(SPECS)} bots",
            details={"bots": list(DEMO_BOT_IDS)},
        ),
    ]


def _minute(at: datetime, start: datetime) -> int:
    return int((at - start) / timedelta(minutes=1))


def _refused_order(rows: Rows, bot: Bot, path: Path, start: datetime) -> None:
    """An order above the bot's position size limit, refused by its own risk check."""
    at = start + timedelta(days=HISTORY_DAYS - 6, hours=3, minutes=13, seconds=27)
    price = path.open_at(_minute(at, start))
    quantity = (Decimal(2840) / price).quantize(path.market.lot, ROUND_DOWN)
    notional = (quantity * price).quantize(Decimal("0.01"))
    limit = bot.max_position_size_usd or ZERO
    error = f"risk check: order notional {notional} USD exceeds max_position_size_usd {limit} USD"
    details = {"client_order_id": "MOM-R0001-entry", "symbol": path.market.symbol}
    rows.orders.append(
        Order(
            bot=bot,
            client_order_id="MOM-R0001-entry",
            symbol=path.market.symbol,
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=quantity,
            price=price,
            status=OrderStatus.REJECTED,
            last_error=error,
            submitted_at=at,
        )
    )
    rows.system_events.append(
        SystemEvent(
            ts=at,
            bot=bot,
            component="risk",
            event_type="order_rejected",
            severity=Severity.WARNING,
            message=error,
            details=details,
        )
    )
    rows.risk_events.append(
        RiskEvent(
            ts=at,
            bot=bot,
            event_type=RiskEventType.POSITION_SIZE_LIMIT,
            severity=Severity.WARNING,
            limit_value=limit,
            actual_value=notional,
            action_taken=RiskAction.ALERTED,
            details=details,
        )
    )


def _expired_orders(
    rows: Rows, bot: Bot, paths: dict[str, Path], start: datetime, draw: random.Random
) -> None:
    """Limit entries below the market that it never came back to, and their signals."""
    spec = spec_for(bot.bot_id)
    for n in range(1, 5):
        i = draw.randint(1440, (HISTORY_DAYS - 1) * 1440)
        symbol, key = draw.choice(spec.symbols)
        path = paths[key]
        price = (path.open_at(i) * Decimal("0.994")).quantize(path.market.tick)
        client_order_id = f"MOM-X{n:04d}-entry"
        submitted_at = start + timedelta(minutes=i, seconds=draw.randint(2, 50))
        stake = Decimal(draw.randint(*spec.stake_usd))
        rows.orders.append(
            Order(
                bot=bot,
                client_order_id=client_order_id,
                exchange_order_id=str(draw.randint(10**10, 10**11 - 1)),
                symbol=symbol,
                side=OrderSide.BUY,
                order_type=OrderType.LIMIT,
                quantity=(stake / price).quantize(path.market.lot, ROUND_DOWN),
                price=price,
                status=OrderStatus.EXPIRED,
                submitted_at=submitted_at,
                metadata={"time_in_force": "GTD", "expires_after_s": 3600},
            )
        )
        rows.signals.append(
            Signal(
                bot=bot,
                symbol=symbol,
                signal_type=spec.signal_type,
                direction=SignalDirection.LONG,
                strength=Decimal(draw.randint(55, 80)) / 100,
                price=path.open_at(i),
                generated_at=submitted_at - timedelta(seconds=draw.randint(1, 20)),
                filters_passed=sorted(spec.filters),
                validated=True,
                outcome=SignalOutcome.SKIPPED,
                metadata={"client_order_id": client_order_id, "reason": "limit order expired"},
            )
        )


def _exchange_trouble(rows: Rows, bot: Bot, path: Path, start: datetime) -> None:
    """A dropped stream, and an order that timed out three times."""
    at = start + timedelta(days=HISTORY_DAYS - 11, hours=5, minutes=41, seconds=9)
    price = path.open_at(_minute(at, start))
    error = "NetworkError: binance POST /fapi/v1/order timed out after 10000 ms (3 retries)"
    rows.orders.append(
        Order(
            bot=bot,
            client_order_id="SS-F0001-entry",
            symbol="ETH/USDT:USDT",
            side=OrderSide.SELL,
            order_type=OrderType.MARKET,
            quantity=(Decimal(2000) / price).quantize(path.market.lot, ROUND_DOWN),
            status=OrderStatus.FAILED,
            retry_count=3,
            last_error=error,
            submitted_at=at - timedelta(seconds=31),
        )
    )
    rows.system_events += [
        SystemEvent(
            ts=at,
            bot=bot,
            component="exchange.binance",
            event_type="order_failed",
            severity=Severity.ERROR,
            message=error,
            details={"client_order_id": "SS-F0001-entry", "retry_count": 3},
        ),
        SystemEvent(
            ts=at - timedelta(days=2, hours=7, minutes=12),
            bot=bot,
            component="exchange.binance",
            event_type="websocket_reconnect",
            severity=Severity.WARNING,
            message="user-data stream closed by the exchange; reconnected after 14 s",
            details={"downtime_s": 14},
        ),
    ]


def _daily_loss_warnings(rows: Rows, bots: dict[str, Bot], sims: dict[str, list[SimTrade]]) -> None:
    """For each bot, the first time its trades closed in the last 24 hours had lost WARN_AT of
    its daily loss limit (rolling, so the day's boundaries do not move with ``now``)."""
    details: dict[str, Any] = {"window": "rolling_24h", "warn_at_pct": int(WARN_AT * 100)}
    for bot_id, bot_sims in sims.items():
        bot = bots[bot_id]
        limit = bot.max_daily_loss_usd or ZERO
        exits = sorted((s.exit_time, s.pnl_usd) for s in bot_sims if s.exit_time and s.pnl_usd)
        window, first = ZERO, 0
        for exit_time, pnl in exits:
            window += pnl
            while exits[first][0] <= exit_time - timedelta(hours=24):
                window -= exits[first][1]
                first += 1
            if -window >= limit * WARN_AT:
                break
        else:
            continue
        loss = -window
        rows.risk_events.append(
            RiskEvent(
                ts=exit_time,
                bot=bot,
                event_type=RiskEventType.DAILY_LOSS_LIMIT,
                severity=Severity.WARNING,
                limit_value=limit,
                actual_value=loss,
                action_taken=RiskAction.ALERTED,
                details=details,
            )
        )
        rows.system_events.append(
            SystemEvent(
                ts=exit_time,
                bot=bot,
                component="risk",
                event_type="daily_loss_warning",
                severity=Severity.WARNING,
                message=f"{bot_id} lost {loss} USD in 24 h: over 75% of its {limit} USD limit",
                details=details,
            )
        )


def _stale_heartbeat(rows: Rows, bot: Bot, now: datetime) -> None:
    """The bot went quiet; the monitor noticed after its 300 s limit, at the next check."""
    heartbeat = now - spec_for(bot.bot_id).heartbeat_age
    noticed = heartbeat + timedelta(minutes=6)
    details = {"unit": "seconds", "last_heartbeat_at": heartbeat.isoformat()}
    rows.risk_events.append(
        RiskEvent(
            ts=noticed,
            bot=bot,
            event_type=RiskEventType.STALE_HEARTBEAT,
            severity=Severity.WARNING,
            limit_value=Decimal(300),
            actual_value=Decimal(360),
            action_taken=RiskAction.ALERTED,
            details=details,
        )
    )
    rows.system_events.append(
        SystemEvent(
            ts=noticed,
            bot=bot,
            component="monitor",
            event_type="heartbeat_missed",
            severity=Severity.WARNING,
            message=f"{bot.bot_id} sent no heartbeat for 360 s (limit 300 s)",
            details=details,
        )
    )
