"""The read operations, against the data set that ``generate_dataset`` loaded.

Selectors and services are called in this process, as the API views and tasks call them; the
trade list endpoint and the admin's trade list page go through a real gunicorn serving the
configured database; the dashboard through Chromium (browser.py). Every one but the dashboard
is set beside its own SQL replayed through psycopg (baseline.py).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from benchmarks.bench.baseline import Replay, capture, measure, timed
from benchmarks.bench.report import Operation, Target
from benchmarks.dataset import DATASET_MARK, SCALES
from trading.models import Bot, MarketData, PositionStatus

Log = Callable[[str], None]
SAME_SQL = "same SQL, psycopg"
NO_CACHE = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@dataclass(frozen=True)
class Repeats:
    warmup: int
    samples: int


@dataclass(frozen=True)
class Subject:
    """What the reads ask about: the busiest running bot of the data set, and a market."""

    bot: Bot
    symbol: str
    exchange: str
    candles_end: datetime  # just after the market's last candle
    until: datetime  # the data set's "now"
    scale: str = "custom"  # generate_dataset's --scale of the data set (SCALES), or "custom"
    sizes: dict[str, int] = field(default_factory=dict)  # its bots, trades and markets

    @property
    def today(self) -> date:
        return self.until.date()

    def as_json(self) -> dict[str, Any]:
        return {
            "bot_id": self.bot.bot_id,
            "bot_trades": self.bot.metadata.get("trades"),
            "symbol": self.symbol,
            "exchange": self.exchange,
            "candles_end": self.candles_end.isoformat(),
            "until": self.until.isoformat(),
            "seed": self.bot.metadata.get("seed"),
            "scale": self.scale,
            **self.sizes,
        }


def dataset_subject() -> Subject | None:
    """The data set's subject, or None when no generated data set is loaded."""
    bots = list(Bot.objects.filter(metadata__dataset=DATASET_MARK).order_by("bot_id"))
    if not bots:
        return None
    running = [b for b in bots if b.status == "active"] or bots
    bot = max(running, key=lambda b: int(b.metadata.get("trades", 0)))
    latest = (
        MarketData.objects.filter(symbol="BTC/USDT", timeframe="1m").order_by("-ts").first()
        or MarketData.objects.filter(timeframe="1m").order_by("symbol", "exchange", "-ts").first()
    )
    if latest is None:
        return None
    until = datetime.fromisoformat(bot.metadata["until"]).astimezone(UTC)
    sizes = {
        "bots": len(bots),
        "trades": sum(int(b.metadata.get("trades", 0)) for b in bots),
        **{k: int(bot.metadata[k]) for k in ("candles", "symbols") if k in bot.metadata},
    }
    return Subject(
        bot=bot,
        symbol=latest.symbol,
        exchange=latest.exchange,
        candles_end=latest.ts + timedelta(minutes=1),
        until=until,
        scale=dataset_scale(bot.metadata, sizes),
        sizes=sizes,
    )


def dataset_scale(metadata: dict[str, Any], sizes: dict[str, int]) -> str:
    """The scale generate_dataset recorded in the bots' metadata; for a data set loaded before it
    did, the scale with these bots and trades; else "custom"."""
    if "scale" in metadata:
        return str(metadata["scale"])
    return next(
        (name for name, s in SCALES.items() if all(s[k] == sizes[k] for k in sizes)), "custom"
    )


def optional(module: str, name: str) -> Callable[..., Any] | None:
    """``module.name``, or None while that module (another issue's work) is not there."""
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return found


SELECTOR_OPS: dict[str, tuple[str, Target | None]] = {
    "open_positions": ("a bot's open positions (selector)", None),
    "bot_summary": ("bot summary, all time (selector, cached)", Target("p50", "<", 5)),
    "bot_summary_cold": (
        "bot summary, all time (selector, computed: cache cold)",
        Target("p50", "<", 5),
    ),
    "portfolio_summary": ("portfolio summary (selector)", Target("p50", "<", 20)),
    "candles_day": ("one day of 1m candles, one market (selector)", Target("p50", "<", 2)),
    "candles_month": ("one month of 1m candles, one market (selector)", Target("p50", "<", 60)),
    "candles_year_1h": (
        "one year of 1h candles, one market (derived; backlog probe + selector, as the GET)",
        Target("p50", "<", 15),
    ),
    "views_refresh": ("refresh the materialized views", Target("p50", "<", 2000)),
    "risk_rollup_today": ("today's risk rollup, every bot", Target("p50", "<", 100)),
}


def selector_op(name: str) -> Operation:
    label, target = SELECTOR_OPS[name]
    return ms_op(name, label, target)


def ms_op(
    name: str,
    label: str,
    target: Target | None = None,
    baseline: str = SAME_SQL,
    *,
    max_ratio: float | None = None,
) -> Operation:
    return Operation(
        name=name,
        label=label,
        rows_per_call=1,
        unit="ms",
        target=target,
        baseline_label=baseline,
        max_ratio=max_ratio,
    )


SKIPPED = "skipped (bench --skip)"


def unavailable(op: Operation, why: str) -> Operation:
    op.available = False
    op.note = f"not available: {why}"
    return op


def failed(op: Operation, exc: BaseException, log: Callable[[str], None]) -> Operation:
    """``op`` reported as not available because measuring it raised ``exc``; samples dropped."""
    op.seconds.clear()
    op.baseline_seconds.clear()
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    why = f"failed: {type(exc).__name__}: {first}" if first else f"failed: {type(exc).__name__}"
    log(f"{op.name}: {why}")
    return unavailable(op, why)


def attempt(op: Operation, run: Callable[[], object], log: Callable[[str], None]) -> Operation:
    """Run ``run``, which fills ``op``; if it raises, ``op`` is not available and the bench goes
    on: one operation that fails never costs the figures of the others."""
    try:
        run()
    except Exception as exc:  # whatever broke, report it beside the others
        return failed(op, exc, log)
    return op


def measure_with_sql(
    op: Operation,
    call: Callable[[], object] | None,
    *,
    raw: psycopg.Connection[Any],
    repeats: Repeats,
    missing: str,
    log: Log,
) -> Operation:
    """Warm ``call`` up, capture its SQL from one more call, then measure both."""
    if call is None:
        return unavailable(op, missing)
    try:
        first = timed(call)  # caches, plans; a rollup's first run also fills earlier days
        replay: Replay = capture(call)
        measure(
            op,
            call,
            baseline=lambda: replay.run(raw),
            warmup=repeats.warmup,
            samples=repeats.samples,
        )
    except Exception as exc:  # a module mid-change, a missing migration, ...
        return failed(op, exc, log)
    if first > 1.0:
        op.note = f"first call (cold, not counted) took {first:.1f} s"
    log(f"{op.name}: {len(op.seconds)} runs, {len(replay.statements)} statement(s)")
    return op


def add_closed_trade_now(bot: Bot) -> None:
    """One trade of ``bot`` that closed just now, written as the trade API writes it."""
    from trading.services.ingest.trades import trade_derived_fields, trade_upsert_many

    now = timezone.now().replace(microsecond=0)
    row = {
        "trade_id": f"bench-cold-{now:%Y%m%d%H%M%S}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": Decimal("0.01"),
        "entry_price": Decimal("50000"),
        "exit_price": Decimal("50100"),
        "entry_time": now - timedelta(minutes=5),
        "exit_time": now,
        "fees_usd": Decimal("0.5"),
        "pnl_usd": None,
        "status": "closed",
        "source": "live",
        "leverage": Decimal("1"),
        "exit_reason": "roi",
        "entry_tag": "",
        "strategy_data": {},
    }
    trade_upsert_many(bot=bot, rows=[trade_derived_fields(row)])


def selector_operations(
    subject: Subject,
    *,
    raw: psycopg.Connection[Any],
    cheap: Repeats,
    costly: Repeats,
    log: Log,
    skip: frozenset[str] = frozenset(),
) -> list[Operation]:
    """The in-process reads and the two scheduled services, each beside its own SQL; those
    named in ``skip`` reported not available, unmeasured."""
    from trading.selectors.candles import candles_range
    from trading.selectors.lists import position_list
    from trading.selectors.market import market_data_range
    from trading.services.candles_derived import derived_candles_catch_up

    bot = subject.bot
    bot_summary = optional("analytics.selectors", "bot_summary")
    portfolio_summary = optional("analytics.selectors", "portfolio_summary")
    views_refresh = optional("analytics.services", "views_refresh")
    rollup = optional("analytics.services", "risk_metrics_rollup")

    def open_positions() -> object:
        return list(position_list(bot=bot).exclude(status=PositionStatus.CLOSED))

    def candles(days: int) -> Callable[[], object]:
        def read() -> object:
            return market_data_range(
                symbol=subject.symbol,
                exchange=subject.exchange,
                timeframe="1m",
                start=subject.candles_end - timedelta(days=days),
                end=subject.candles_end,
                limit=days * 24 * 60,
            )

        return read

    def measured(name: str, call: Callable[[], object] | None, **kwargs: Any) -> Operation:
        if name in skip:
            return unavailable(selector_op(name), SKIPPED)
        return measure_with_sql(selector_op(name), call, **kwargs)

    ops: list[Operation] = []
    ops.append(
        measured(
            "open_positions",
            open_positions,
            raw=raw,
            repeats=cheap,
            missing="",
            log=log,
        )
    )
    ops.append(
        measured(
            "bot_summary",
            None if bot_summary is None else lambda: bot_summary(bot=bot),
            raw=raw,
            repeats=cheap,
            missing="analytics.selectors.bot_summary is not there yet",
            log=log,
        )
    )
    # The first read after the bot's trades changed: no summary cached for their version, so
    # the selector computes it (the version probe, then the figures). As in production, the
    # bot's summary checkpoint is there (the scheduled refresh builds it; built here first,
    # not measured), and a trade closed since its cut changed the version: the read combines
    # the checkpoint with the trades since. That trade is added in a transaction rolled back
    # after the measure, so the data set is left as it was.
    refresh = optional("analytics.services", "bot_summary_checkpoints_refresh")
    if "bot_summary_cold" in skip:
        refresh = None
    if refresh is not None:
        refresh()
    with override_settings(CACHES=NO_CACHE), transaction.atomic():
        if refresh is not None:
            add_closed_trade_now(bot)
        ops.append(
            measured(
                "bot_summary_cold",
                None if bot_summary is None else lambda: bot_summary(bot=bot),
                raw=raw,
                repeats=cheap,
                missing="analytics.selectors.bot_summary is not there yet",
                log=log,
            )
        )
        transaction.set_rollback(True)
    ops.append(
        measured(
            "portfolio_summary",
            None if portfolio_summary is None else lambda: portfolio_summary(now=subject.until),
            raw=raw,
            repeats=cheap,
            missing="analytics.selectors.portfolio_summary is not there yet",
            log=log,
        )
    )
    for days, name in ((1, "candles_day"), (30, "candles_month")):
        ops.append(
            measured(
                name,
                candles(days),
                raw=raw,
                repeats=cheap,
                missing="",
                log=log,
            )
        )

    def candles_year_1h() -> object:
        # As GET market-data/?timeframe=1h does: the market's backlog first (a probe when
        # the beat task kept up), then the page of a year's 8,760 hours.
        derived_candles_catch_up(symbol=subject.symbol, exchange=subject.exchange)
        return candles_range(
            symbol=subject.symbol,
            exchange=subject.exchange,
            timeframe="1h",
            start=subject.candles_end - timedelta(days=365),
            end=subject.candles_end,
            limit=10_000,
        )

    ops.append(
        measured(
            "candles_year_1h",
            candles_year_1h,
            raw=raw,
            repeats=cheap,
            missing="",
            log=log,
        )
    )
    ops.append(
        measured(
            "views_refresh",
            views_refresh,
            raw=raw,
            repeats=costly,
            missing="analytics.services.views_refresh is not there yet",
            log=log,
        )
    )
    ops.append(
        measured(
            "risk_rollup_today",
            None if rollup is None else lambda: rollup(day=subject.today),
            raw=raw,
            repeats=cheap,
            missing="analytics.services.risk_metrics_rollup is not there yet",
            log=log,
        )
    )
    return ops
