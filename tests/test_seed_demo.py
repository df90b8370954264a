"""`manage.py seed_demo`: the pinned demo data set, its internal consistency, and a second run
that changes nothing.

Seeding takes a few seconds, so the read-only checks share one seeded database (the ``seeded``
fixture, rolled back after this module). The tests that need a database without demo bots come
first in this file: pytest runs a module's tests in the order they are written, and ``seeded``
is set up by the first test that asks for it.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.db import models, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Greatest, Least

from audit.models import ChangeLog, RiskEvent, SystemEvent
from botconfig.demo import DEMO_BOT_IDS, demo_seed
from botconfig.demo.market import candles_store, price_path
from botconfig.demo.specs import MARKETS
from botconfig.models import BotConfiguration
from botconfig.selectors import config_diff
from tests.factories import make_bot, make_candle
from trading.models import (
    AccountBalance,
    Bot,
    DerivedCandleBacklog,
    MarketData,
    Order,
    OrderFill,
    Position,
    Signal,
    Trade,
)

NOW = datetime(2026, 3, 2, 14, 37, 21, 123456, tzinfo=UTC)
USD = Decimal("1e-8")
PRICE = Decimal("1e-10")
PCT = Decimal("1e-6")

TABLES: dict[str, type[models.Model]] = {
    "trading.bots": Bot,
    "config.bot_configurations": BotConfiguration,
    "trading.trades": Trade,
    "trading.positions": Position,
    "trading.orders": Order,
    "trading.order_fills": OrderFill,
    "trading.signals": Signal,
    "trading.account_balance": AccountBalance,
    "trading.market_data": MarketData,
    "audit.system_events": SystemEvent,
    "audit.risk_events": RiskEvent,
    "audit.change_log": ChangeLog,
}
EXPECTED = {
    "trading.bots": 3,
    "config.bot_configurations": 4,
    "trading.trades": 276,
    "trading.positions": 276,
    "trading.orders": 558,
    "trading.order_fills": 840,
    "trading.signals": 400,
    "trading.account_balance": 2160,
    "trading.market_data": 30240,
    "audit.system_events": 10,
    "audit.risk_events": 3,
    "audit.change_log": 8,  # 3 bots, 4 versions, 1 limit change (momentum v2: 4 positions)
}

TRADE_FIELDS = [
    "bot",
    "trade_id",
    "symbol",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "entry_time",
    "exit_time",
    "fees_usd",
    "pnl_usd",
    "pnl_pct",
    "exit_reason",
    "entry_tag",
    "position__status",
]


def _counts() -> dict[str, int]:
    return {table: model._default_manager.count() for table, model in TABLES.items()}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _seeded_now() -> datetime:
    """The ``now`` the seed ran at: the demo's last event (demo_momentum loading version 2)."""
    return SystemEvent.objects.get(event_type="config_reloaded").ts


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """The seeded rows, without database ids and the times rows were written."""
    return {
        "bots": list(
            Bot.objects.order_by("bot_id").values_list(
                "bot_id", "mode", "initial_capital_usd", "current_equity_usd", "last_heartbeat_at"
            )
        ),
        "configs": list(
            BotConfiguration.objects.order_by("bot", "version").values_list(
                "bot", "version", "config"
            )
        ),
        "trades": list(Trade.objects.order_by("bot", "trade_id").values_list(*TRADE_FIELDS)),
        "fills": list(
            OrderFill.objects.order_by(
                "order__bot", "order__client_order_id", "fill_id"
            ).values_list(
                "order__client_order_id", "fill_id", "quantity", "price", "fee", "filled_at"
            )
        ),
        "orders": list(
            Order.objects.order_by("bot", "client_order_id").values_list(
                "bot", "client_order_id", "status", "quantity", "filled_quantity", "avg_fill_price"
            )
        ),
        "balances": list(
            AccountBalance.objects.order_by("bot", "ts").values_list("bot", "ts", "equity_usd")
        ),
        "signals": list(
            Signal.objects.order_by("bot", "generated_at", "symbol").values_list(
                "bot", "symbol", "generated_at", "outcome", "trade__trade_id"
            )
        ),
        "candles": list(
            MarketData.objects.order_by("symbol", "ts").values_list(
                "symbol", "ts", "open", "high", "low", "close", "volume"
            )
        ),
        "system_events": list(
            SystemEvent.objects.order_by("ts", "event_type").values_list("ts", "bot", "message")
        ),
        "risk_events": list(
            RiskEvent.objects.order_by("ts").values_list("ts", "bot", "event_type", "actual_value")
        ),
    }


# --- On a database without the demo bots -------------------------------------------------------
@pytest.mark.django_db
def test_two_runs_on_an_empty_database_write_the_same_rows() -> None:
    assert not Bot.objects.exists()

    def seed_and_snapshot() -> dict[str, list[tuple[Any, ...]]]:
        with transaction.atomic():
            demo_seed(now=NOW)
            snapshot = _snapshot()
            transaction.set_rollback(True)
        return snapshot

    first = seed_and_snapshot()
    assert _counts() == dict.fromkeys(TABLES, 0)
    second = seed_and_snapshot()

    assert {name: len(rows) for name, rows in first.items()} == {
        "bots": 3, "configs": 4, "trades": 276, "fills": 840, "orders": 558, "balances": 2160,
        "signals": 400, "candles": 30240, "system_events": 10, "risk_events": 3,
    }  # fmt: skip
    assert first == second


@pytest.mark.django_db
def test_a_candle_already_stored_is_kept_and_not_counted() -> None:
    path = price_path(MARKETS["ETH"], minutes=60)
    start = NOW.replace(second=0, microsecond=0) - timedelta(hours=1)
    mine = make_candle(symbol="ETH/USDT", ts=start + timedelta(minutes=55))

    created = candles_store([path], start, first=50)

    assert created == 9
    assert MarketData.objects.count() == 10
    assert MarketData.objects.get(pk=mine.pk).close == Decimal("105")
    stored = MarketData.objects.exclude(pk=mine.pk).order_by("ts")
    assert [c.close for c in stored] == [path.closes[i] for i in range(50, 60) if i != 55]
    # Their minutes are noted for the derived candles, as the API's are.
    assert list(DerivedCandleBacklog.objects.values_list("symbol", "first_ts", "last_ts")) == [
        ("ETH/USDT", start + timedelta(minutes=50), start + timedelta(minutes=59))
    ]


@pytest.mark.django_db
def test_a_demo_bot_already_registered_means_nothing_is_written() -> None:
    make_bot("demo_momentum")
    before = _counts()

    output = _seed()

    assert output == "demo data already present (demo_momentum): nothing to do\n"
    assert _counts() == before


@pytest.mark.django_db
def test_a_database_seeded_under_the_old_ids_is_not_seeded_twice() -> None:
    # given: the demo as seeded before its bots got demo_* ids (metadata "demo": true)
    make_bot("momentum_001", metadata={"demo": True})
    make_bot("shortseller_001")  # a live bot of that name, not the demo: no reason to skip
    before = _counts()

    output = _seed()

    assert output == "demo data already present (momentum_001): nothing to do\n"
    assert _counts() == before


# --- On the seeded database --------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Seed once for the read-only tests below; roll back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        output = _seed()
        yield output
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_seed_writes_the_pinned_counts_and_reports_them(seeded: str) -> None:
    assert _counts() == EXPECTED
    lines = seeded.splitlines()
    assert lines[0] == "demo data created:"
    assert {line.split()[0]: int(line.split()[1]) for line in lines[1:]} == EXPECTED


@pytest.mark.django_db
def test_second_run_changes_nothing_and_says_so(seeded: str) -> None:
    output = _seed()

    assert output == (
        "demo data already present (demo_lxalgo, demo_momentum, demo_shortseller): nothing to do\n"
    )
    assert _counts() == EXPECTED


@pytest.mark.django_db
def test_bots_are_registered_with_one_active_configuration_each(seeded: str) -> None:
    bots = {bot.bot_id: bot for bot in Bot.objects.all()}
    assert sorted(bots) == sorted(DEMO_BOT_IDS)
    assert {b.bot_id: (b.name, b.exchange, b.mode) for b in bots.values()} == {
        "demo_shortseller": ("Shortseller", "binance", "live"),
        "demo_momentum": ("Momentum", "binance", "live"),
        "demo_lxalgo": ("LXAlgo", "binance", "paper"),
    }
    assert bots["demo_shortseller"].strategy_type == "short_biased_multi_asset"
    assert bots["demo_momentum"].strategy_type == "trend_following"
    for bot in bots.values():
        active = BotConfiguration.objects.get(bot=bot, is_active=True)
        risk = active.config["risk"]
        assert bot.max_position_size_usd == Decimal(risk["max_position_size_usd"])
        assert bot.max_daily_loss_usd == Decimal(risk["max_daily_loss_usd"])
        assert isinstance(active.config["pause_on_breach"], bool)

    versions = list(BotConfiguration.objects.filter(bot_id="demo_momentum").order_by("version"))
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    assert versions[0].effective_to == versions[1].effective_from
    changes = config_diff(old=versions[0].config, new=versions[1].config)
    assert [(c.path, c.kind) for c in changes] == [
        ("pause_on_breach", "changed"),
        ("risk.max_open_positions", "changed"),
        ("risk.trailing_stop.distance_pct", "changed"),
        ("strategy.min_adx", "added"),
    ]


@pytest.mark.django_db
def test_every_bot_creation_and_configuration_version_is_audited(seeded: str) -> None:
    bot_records = ChangeLog.objects.filter(entity_type="trading.bot", action="create")
    assert sorted(bot_records.values_list("entity_id", flat=True)) == sorted(DEMO_BOT_IDS)
    config_ids = {str(pk) for pk in BotConfiguration.objects.values_list("pk", flat=True)}
    config_records = ChangeLog.objects.filter(entity_type="botconfig.botconfiguration")
    assert set(config_records.values_list("entity_id", flat=True)) == config_ids


@pytest.mark.django_db
def test_closed_trades_pnl_follows_from_their_prices_quantity_and_fees(seeded: str) -> None:
    closed = list(Trade.objects.filter(status="closed").select_related("bot"))
    assert len(closed) == 271
    for trade in closed:
        assert trade.exit_price is not None and trade.pnl_usd is not None
        move = trade.exit_price - trade.entry_price
        gross = move * trade.quantity if trade.side == "long" else -move * trade.quantity
        assert trade.pnl_usd == (gross - trade.fees_usd).quantize(USD), trade.trade_id
        notional = trade.entry_price * trade.quantity
        assert trade.pnl_pct == (trade.pnl_usd / notional * 100).quantize(PCT), trade.trade_id
        assert trade.exit_reason in {"roi", "stop_loss", "trailing_stop", "signal"}
        assert trade.entry_tag
        assert trade.source == ("live" if trade.bot.mode == "live" else "paper")

    by_bot: dict[str, Counter[bool]] = defaultdict(Counter)
    for trade in closed:
        by_bot[trade.bot_id][(trade.pnl_usd or 0) > 0] += 1
    for bot_id, wins in by_bot.items():
        assert 0.45 <= wins[True] / wins.total() <= 0.60, bot_id
    history_start = min(t.entry_time for t in closed)
    assert max(t.exit_time or history_start for t in closed) - history_start > timedelta(days=28)


@pytest.mark.django_db
def test_orders_agree_with_their_fills_and_trades(seeded: str) -> None:
    fills: dict[int, list[OrderFill]] = defaultdict(list)
    for fill in OrderFill.objects.all():
        fills[fill.order_id].append(fill)
    orders = list(Order.objects.all())
    for order in orders:
        own = fills[order.pk]
        assert order.filled_quantity == sum((f.quantity for f in own), Decimal(0))
        if own:
            notional = sum((f.quantity * f.price for f in own), Decimal(0))
            assert order.avg_fill_price == (notional / order.filled_quantity).quantize(PRICE)
            assert order.fees_usd == sum((f.fee for f in own), Decimal(0)).quantize(USD)
            assert order.filled_at == max(f.filled_at for f in own)
        else:
            assert order.avg_fill_price is None
    assert Counter(o.status for o in orders) == {
        "filled": 547, "expired": 4, "submitted": 5, "rejected": 1, "failed": 1,
    }  # fmt: skip
    assert all(o.filled_quantity == o.quantity for o in orders if o.status == "filled")

    for trade in Trade.objects.prefetch_related("orders"):
        by_suffix = {o.client_order_id.rsplit("-", 1)[1]: o for o in trade.orders.all()}
        assert by_suffix["entry"].avg_fill_price == trade.entry_price
        if trade.status == "closed":
            assert by_suffix["exit"].avg_fill_price == trade.exit_price
        assert trade.fees_usd == sum(o.fees_usd for o in by_suffix.values())


@pytest.mark.django_db
def test_open_trades_hold_the_only_open_positions(seeded: str) -> None:
    open_trades = Trade.objects.filter(status="open")
    assert open_trades.count() == 5
    assert all(t.exit_price is None and t.pnl_usd is None for t in open_trades)
    open_positions = Position.objects.exclude(status="closed")
    assert sorted(open_positions.values_list("pk", flat=True)) == sorted(
        open_trades.values_list("position", flat=True)
    )
    keys = Counter(open_positions.values_list("bot", "symbol", "exchange", "side"))
    assert max(keys.values()) == 1
    assert not Position.objects.filter(status="closed").exclude(quantity=0).exists()
    assert not Position.objects.exclude(status="closed").exclude(quantity=F("initial_quantity"))


@pytest.mark.django_db
def test_balances_follow_realized_pnl_and_set_each_bots_equity(seeded: str) -> None:
    for bot in Bot.objects.all():
        balances = list(AccountBalance.objects.filter(bot=bot).order_by("ts"))
        assert len(balances) == 720
        assert {b.snapshot_type for b in balances} == {"periodic"}
        assert all(b.ts - a.ts == timedelta(hours=1) for a, b in pairwise(balances))
        closed = list(
            Trade.objects.filter(bot=bot, status="closed").values_list("exit_time", "pnl_usd")
        )
        for row in balances[:: 24 * 5] + balances[-1:]:
            realized = sum((pnl for at, pnl in closed if at and pnl and at <= row.ts), Decimal(0))
            assert row.balance_usd == bot.initial_capital_usd + realized
            assert row.equity_usd == row.balance_usd + row.unrealized_pnl_usd
        assert bot.current_equity_usd == balances[-1].equity_usd


@pytest.mark.django_db
def test_one_bot_has_a_stale_heartbeat(seeded: str) -> None:
    now = _seeded_now()
    heartbeats = Bot.objects.values_list("bot_id", "last_heartbeat_at")
    ages = {bot_id: now - at for bot_id, at in heartbeats if at is not None}
    assert ages == {
        "demo_shortseller": timedelta(seconds=12),
        "demo_momentum": timedelta(seconds=38),
        "demo_lxalgo": timedelta(minutes=17),
    }
    stale = RiskEvent.objects.get(event_type="stale_heartbeat")
    assert (stale.bot_id, stale.resolved) == ("demo_lxalgo", False)
    quiet_since = now - ages["demo_lxalgo"]
    assert not Trade.objects.filter(bot_id="demo_lxalgo", entry_time__gt=quiet_since).exists()
    assert not Trade.objects.filter(bot_id="demo_lxalgo", exit_time__gt=quiet_since).exists()


@pytest.mark.django_db
def test_risk_events_agree_with_the_trades_and_orders_they_describe(seeded: str) -> None:
    assert Counter(RiskEvent.objects.values_list("bot", "event_type")) == {
        ("demo_momentum", "daily_loss_limit"): 1,
        ("demo_momentum", "position_size_limit"): 1,
        ("demo_lxalgo", "stale_heartbeat"): 1,
    }
    momentum = Bot.objects.get(bot_id="demo_momentum")
    daily = RiskEvent.objects.get(event_type="daily_loss_limit")
    window = Trade.objects.filter(
        bot=momentum, exit_time__gt=daily.ts - timedelta(hours=24), exit_time__lte=daily.ts
    )
    loss = -(window.aggregate(pnl=Sum("pnl_usd"))["pnl"] or 0)
    assert daily.actual_value == loss
    assert daily.limit_value == momentum.max_daily_loss_usd
    assert Decimal("0.75") * daily.limit_value <= loss < daily.limit_value

    size = RiskEvent.objects.get(event_type="position_size_limit")
    refused = Order.objects.get(status="rejected")
    assert refused.price is not None
    assert size.actual_value == (refused.quantity * refused.price).quantize(Decimal("0.01"))
    assert size.limit_value == momentum.max_position_size_usd < size.actual_value


@pytest.mark.django_db
def test_signals_either_led_to_a_trade_or_were_skipped(seeded: str) -> None:
    executed = Signal.objects.filter(executed=True)
    assert executed.count() == Trade.objects.count()
    assert not executed.filter(trade__isnull=True).exists()
    for signal in executed.select_related("trade"):
        assert signal.trade is not None
        assert signal.outcome_pnl_usd == signal.trade.pnl_usd
        pnl = signal.trade.pnl_usd
        expected = (
            "pending" if pnl is None else "win" if pnl > 0 else "loss" if pnl < 0 else "breakeven"
        )
        assert signal.outcome == expected
    skipped = Signal.objects.filter(executed=False)
    assert skipped.count() == 124
    assert set(skipped.values_list("outcome", flat=True)) == {"skipped"}
    assert skipped.filter(validated=False).exclude(filters_failed=[]).count() == 120


@pytest.mark.django_db
def test_candles_cover_the_last_week_and_obey_the_ohlc_rules(seeded: str) -> None:
    anchor = _seeded_now().replace(second=0, microsecond=0)
    per_symbol = MarketData.objects.values("symbol", "exchange", "timeframe").annotate(
        n=models.Count("id"), first=models.Min("ts"), last=models.Max("ts")
    )
    assert sorted((r["symbol"], r["exchange"], r["timeframe"], r["n"]) for r in per_symbol) == [
        ("BTC/USDT", "binance", "1m", 10080),
        ("ETH/USDT", "binance", "1m", 10080),
        ("SOL/USDT", "binance", "1m", 10080),
    ]
    for row in per_symbol:
        assert (row["first"], row["last"]) == (
            anchor - timedelta(days=7),
            anchor - timedelta(minutes=1),
        )
    broken = MarketData.objects.filter(
        Q(high__lt=Greatest("open", "close")) | Q(low__gt=Least("open", "close")) | Q(low__lte=0)
    )
    assert not broken.exists()
    previous: dict[str, Decimal] = {}
    for symbol, open_, close in MarketData.objects.order_by("symbol", "ts").values_list(
        "symbol", "open", "close"
    ):
        if symbol in previous:
            assert open_ == previous[symbol]  # a candle opens where the one before closed
        previous[symbol] = close
    assert MarketData.objects.aggregate(v=Sum("volume"))["v"] > 0
