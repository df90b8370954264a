"""demo_seed: the service behind ``manage.py seed_demo``."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import ChangeLog, RiskEvent, SystemEvent
from botconfig.demo.incidents import incident_rows
from botconfig.demo.market import candles_store, price_path
from botconfig.demo.rows import Rows, balance_rows, skipped_signal_rows, trade_rows
from botconfig.demo.simulate import SimTrade, simulate_trades
from botconfig.demo.specs import (
    CANDLE_DAYS,
    DEMO_BOT_IDS,
    EXCHANGE,
    HISTORY_DAYS,
    MARKETS,
    OLD_DEMO_BOT_IDS,
    SPECS,
    BotSpec,
)
from botconfig.models import BotConfiguration
from botconfig.services import bot_register, config_version_create
from trading.models import AccountBalance, Bot, Order, OrderFill, Position, Signal, Trade


@dataclass(frozen=True)
class DemoReport:
    """Rows written per table. ``already_present`` names the demo bots found, if any: then
    nothing was written."""

    created: dict[str, int] = field(default_factory=dict)
    already_present: tuple[str, ...] = ()


def _register(spec: BotSpec) -> Bot:
    """The bot and its configuration, through the registry's services (audited). Its risk
    limits are the configuration's ``risk.max_*`` keys."""
    bot = bot_register(
        bot_id=spec.bot_id,
        name=spec.name,
        strategy_type=spec.strategy_type,
        exchange=EXCHANGE,
        initial_capital_usd=spec.initial_capital,
        config=spec.config,
        change_reason="demo data: initial configuration",
        mode=spec.mode,
        metadata={"demo": True, "host": f"{spec.bot_id.replace('_', '-')}.demo.local"},
    )
    if spec.config_v2 is not None:
        config_version_create(
            bot=bot, config=spec.config_v2, user=None, change_reason=spec.config_v2_reason
        )
    return bot


@transaction.atomic
def demo_seed(*, now: datetime | None = None) -> DemoReport:
    """Register the demo bots and write a month of their history, ending at ``now``.

    Writes nothing when a demo bot already exists. Candles already stored (sent by a bot) are
    kept; the market-data count says how many were added.
    """
    if now is not None and timezone.is_naive(now):
        raise ValueError("demo_seed needs a timezone-aware `now`")
    now = (now or timezone.now()).astimezone(UTC)
    with connection.cursor() as cursor:  # a second seeder at the same time waits, then finds bots
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('atb.demo_seed'))")
    # A database seeded before the demo bots got ids of their own holds them as
    # shortseller_001, momentum_001, lxalgo_001 (metadata "demo": true): that is the demo too.
    present = Bot.objects.filter(
        Q(bot_id__in=DEMO_BOT_IDS) | Q(bot_id__in=OLD_DEMO_BOT_IDS, metadata__demo=True)
    ).order_by("bot_id")
    if present.exists():
        return DemoReport(already_present=tuple(present.values_list("bot_id", flat=True)))

    anchor = now.replace(second=0, microsecond=0)
    start = anchor - timedelta(days=HISTORY_DAYS)
    minutes = HISTORY_DAYS * 24 * 60
    paths = {key: price_path(market, minutes) for key, market in MARKETS.items()}

    bots = {spec.bot_id: _register(spec) for spec in SPECS}
    rows = Rows()
    sims: dict[str, list[SimTrade]] = {}
    equity: dict[str, Decimal] = {}
    for spec in SPECS:
        bot = bots[spec.bot_id]
        bot_sims = sorted(
            (
                sim
                for symbol, key in spec.symbols
                for sim in simulate_trades(spec, symbol, paths[key], start)
            ),
            key=lambda sim: sim.entry_time,
        )
        for n, sim in enumerate(bot_sims, start=1):
            sim.trade_id = f"{spec.trade_prefix}-{n:05d}"
            trade_rows(rows, bot, sim)
        sims[spec.bot_id] = bot_sims
        skipped_signal_rows(rows, bot, spec, paths, start)
        equity[spec.bot_id] = balance_rows(rows, bot, bot_sims, start, anchor).equity_usd
    incident_rows(rows, bots, sims, paths, start, now)

    Position.objects.bulk_create(rows.positions)
    Trade.objects.bulk_create(rows.trades)
    # Oldest first, so that created_at, set as each is inserted, follows their history too.
    rows.orders.sort(key=lambda order: order.submitted_at or now)
    Order.objects.bulk_create(rows.orders)
    OrderFill.objects.bulk_create(rows.fills)
    Signal.objects.bulk_create(rows.signals)
    AccountBalance.objects.bulk_create(rows.balances)
    SystemEvent.objects.bulk_create(rows.system_events)
    RiskEvent.objects.bulk_create(rows.risk_events)
    candles = candles_store(list(paths.values()), start, first=minutes - CANDLE_DAYS * 24 * 60)
    for spec in SPECS:  # what the bots report as they run
        Bot.objects.filter(pk=spec.bot_id).update(
            current_equity_usd=equity[spec.bot_id], last_heartbeat_at=now - spec.heartbeat_age
        )

    config_ids = [
        str(pk)
        for pk in BotConfiguration.objects.filter(bot__in=DEMO_BOT_IDS).values_list("pk", flat=True)
    ]
    audited = ChangeLog.objects.filter(
        Q(entity_type="trading.bot", entity_id__in=DEMO_BOT_IDS)
        | Q(entity_type="botconfig.botconfiguration", entity_id__in=config_ids)
    )
    return DemoReport(
        created={
            "trading.bots": len(bots),
            "config.bot_configurations": len(config_ids),
            "trading.trades": len(rows.trades),
            "trading.positions": len(rows.positions),
            "trading.orders": len(rows.orders),
            "trading.order_fills": len(rows.fills),
            "trading.signals": len(rows.signals),
            "trading.account_balance": len(rows.balances),
            "trading.market_data": candles,
            "audit.system_events": len(rows.system_events),
            "audit.risk_events": len(rows.risk_events),
            "audit.change_log": audited.count(),
        }
    )
