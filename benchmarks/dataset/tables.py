"""The rows of every table, derived from the bots, the trades and the price paths.

Consistency by construction: a closed trade's pnl is (exit - entry) x quantity x direction -
fees, to the 1e-8; its orders' fees add up to the trade's and its fills' to the order's; each
open trade has its open position (one per bot, market and side) and a resting stop order; a
bot's hourly balance is its initial capital plus the pnl of the trades it closed by then.
"""

import json

import numpy as np

from benchmarks.dataset.columns import Column, Table, pick
from benchmarks.dataset.generate import (
    MINUTE_US,
    US,
    Bots,
    Streams,
    Trades,
    epoch_us,
    make_bots,
    make_trades,
    price_paths,
)
from benchmarks.dataset.orders import order_tables, trade_direction, trade_reasons
from benchmarks.dataset.spec import (
    BASES,
    CANDLE_EXCHANGE,
    DATASET_MARK,
    QUOTE,
    STRATEGIES,
    DatasetSpec,
)

CENTS_TO_E8 = 10**6
HOUR_US = 3600 * US


def dataset_tables(spec: DatasetSpec) -> list[Table]:
    """Every table of the data set, in load order (referenced tables first)."""
    rng = Streams(spec.seed)
    paths, vol = price_paths(spec, rng)
    bots = make_bots(spec, rng)
    trades = make_trades(spec, bots, paths, rng)
    symbols = np.array([f"{b}/{QUOTE}" for b in BASES[: spec.symbols]], dtype=object)
    positions, position_id, unrealized = _positions(spec, bots, trades, paths, symbols)
    orders, fills = order_tables(bots, trades, position_id, symbols, rng)
    balances, realized = _balances(spec, bots, trades)
    return [
        _bots(spec, bots, realized, unrealized),
        positions,
        _trades(spec, bots, trades, position_id, symbols),
        orders,
        fills,
        balances,
        *_candles(spec, paths, vol, symbols, rng),
    ]


def _closed_pnl(t: Trades) -> tuple[np.ndarray, np.ndarray]:
    """(fees, pnl) in 1e-8 USD; pnl is 0 for open trades."""
    closed = ~t.is_open
    fees = t.fee_entry + np.where(closed, t.fee_exit, 0)
    pnl = np.where(closed, trade_direction(t) * (t.exit_ticks - t.entry_ticks) * t.qty - fees, 0)
    return fees, pnl


def pnl_pct(pnl: np.ndarray, notional: np.ndarray) -> list[int]:
    """pnl / notional x 100 in whole 1e-6 (NUMERIC(12, 6)), rounded half to even as the ingest
    path's Decimal quantize does; Python integers, so exact."""
    out: list[int] = []
    for p, d in zip(pnl.tolist(), notional.tolist(), strict=True):
        q, r = divmod(abs(p) * 100 * 10**6, d)
        if 2 * r > d or (2 * r == d and q % 2):
            q += 1
        out.append(-q if p < 0 else q)
    return out


def _bots(spec: DatasetSpec, bots: Bots, realized: np.ndarray, unrealized: np.ndarray) -> Table:
    n = spec.bots
    until = epoch_us(spec.until)
    capital_e8 = bots.capital_cents * CENTS_TO_E8
    heartbeat_age = np.where(
        np.array(bots.status) == "active",
        (np.arange(n) * 7919 % 55 + 2) * US,  # a few seconds for a running bot
        (np.arange(n) % 48 + 6) * HOUR_US,  # hours for a paused or stopped one
    )
    metadata = [
        json.dumps(
            {
                "dataset": DATASET_MARK,
                "seed": spec.seed,
                "until": spec.until.isoformat(),
                "trades": int(k),
            }
        )
        for k in bots.trades
    ]
    created = epoch_us(spec.start) - 24 * HOUR_US
    return Table(
        "trading.bots",
        n,
        (
            Column("bot_id", bots.ids, "text"),
            Column("name", [f"{i.replace('_', ' ').title()}" for i in bots.ids], "text"),
            Column("strategy_type", pick(tuple(s[0] for s in STRATEGIES), bots.strategy), "text"),
            Column("exchange", bots.exchange, "text"),
            Column("base_currency", QUOTE, "const"),
            Column("status", bots.status, "text"),
            Column("mode", bots.mode, "text"),
            Column("initial_capital_usd", bots.capital_cents, "e2"),
            Column("current_equity_usd", capital_e8 + realized + unrealized, "e8"),
            Column("max_position_size_usd", bots.capital_cents // 5, "e2"),
            Column("max_daily_loss_usd", bots.capital_cents // 20, "e2"),
            Column("max_drawdown_pct", 20 + np.arange(n) % 3 * 5),
            Column("max_leverage", np.maximum(bots.leverage, 1) * 2),
            Column("max_open_positions", np.full(n, 5)),
            Column("last_heartbeat_at", until - heartbeat_age, "ts"),
            Column("created_at", np.full(n, created), "ts"),
            Column("updated_at", np.full(n, until), "ts"),
            Column("metadata", metadata, "text"),
        ),
    )


def _positions(
    spec: DatasetSpec, bots: Bots, t: Trades, paths: np.ndarray, symbols: np.ndarray
) -> tuple[Table, np.ndarray, np.ndarray]:
    """The open position of each open trade; the trades' position ids (0: none); each bot's
    unrealized pnl (1e-8 USD) at the last close."""
    open_idx = np.flatnonzero(t.is_open)
    k = len(open_idx)
    position_id = np.zeros(len(t.bot), dtype=np.int64)
    position_id[open_idx] = np.arange(1, k + 1)
    bot = t.bot[open_idx]
    entry = t.entry_ticks[open_idx]
    qty = t.qty[open_idx]
    direction = trade_direction(t)[open_idx]
    current = paths[t.symbol[open_idx], -1]
    unrealized = direction * (current - entry) * qty
    stop = np.maximum(np.rint(entry * (1 - direction * bots.loss_r[bot])), 1).astype(np.int64)
    target = np.maximum(np.rint(entry * (1 + direction * bots.win_r[bot])), 1).astype(np.int64)
    names = np.array(bots.ids, dtype=object)
    table = Table(
        "trading.positions",
        k,
        (
            Column("id", np.arange(1, k + 1)),
            Column("bot_id", names[bot], "text"),
            Column("symbol", symbols[t.symbol[open_idx]], "text"),
            Column("exchange", np.array(bots.exchange, dtype=object)[bot], "text"),
            Column("side", np.where(t.short[open_idx], "short", "long").astype(object), "text"),
            Column("status", "open", "const"),
            Column("quantity", qty, "e4"),
            Column("initial_quantity", qty, "e4"),
            Column("avg_entry_price", entry, "e4"),
            Column("current_price", current, "e4"),
            Column("unrealized_pnl_usd", unrealized, "e8"),
            Column("realized_pnl_usd", "0", "const"),
            Column("stop_loss", stop, "e4"),
            Column("take_profit", target, "e4"),
            Column("leverage", bots.leverage[bot]),
            Column("opened_at", t.entry_us[open_idx], "ts"),
            Column("updated_at", np.full(k, epoch_us(spec.until)), "ts"),
            Column("metadata", "{}", "const"),
        ),
    )
    per_bot = np.bincount(bot, weights=unrealized, minlength=spec.bots).astype(np.int64)
    return table, position_id, per_bot


def _trades(
    spec: DatasetSpec, bots: Bots, t: Trades, position_id: np.ndarray, symbols: np.ndarray
) -> Table:
    n = len(t.bot)
    fees, pnl = _closed_pnl(t)
    pct = np.array(pnl_pct(pnl, t.entry_ticks * t.qty), dtype=np.int64)
    strategy = bots.strategy[t.bot]
    tags = np.array(
        [
            STRATEGIES[s][1][c % len(STRATEGIES[s][1])]
            for s, c in zip(strategy.tolist(), t.tag_code.tolist(), strict=True)
        ],
        dtype=object,
    )
    strategy_data = np.array(
        [json.dumps({"timeframe": s[2], "strategy": s[0]}) for s in STRATEGIES], dtype=object
    )
    return Table(
        "trading.trades",
        n,
        (
            Column("id", np.arange(1, n + 1)),
            Column("bot_id", np.array(bots.ids, dtype=object)[t.bot], "text"),
            Column("trade_id", [f"T{s:07d}" for s in t.seq.tolist()], "text"),
            Column("symbol", symbols[t.symbol], "text"),
            Column("exchange", np.array(bots.exchange, dtype=object)[t.bot], "text"),
            Column("side", np.where(t.short, "short", "long").astype(object), "text"),
            Column("quantity", t.qty, "e4"),
            Column("entry_price", t.entry_ticks, "e4"),
            Column("exit_price", t.exit_ticks, "e4", null=t.is_open),
            Column("entry_time", t.entry_us, "ts"),
            Column("exit_time", t.exit_us, "ts", null=t.is_open),
            Column("fees_usd", fees, "e8"),
            Column("pnl_usd", pnl, "e8", null=t.is_open),
            Column("pnl_pct", pct, "e6", null=t.is_open),
            Column("status", np.where(t.is_open, "open", "closed").astype(object), "text"),
            Column("source", t.source, "text"),
            Column("leverage", bots.leverage[t.bot]),
            Column("exit_reason", trade_reasons(t), "text"),
            Column("entry_tag", tags, "text"),
            Column("position_id", position_id, null=position_id == 0),
            Column("strategy_data", strategy_data[strategy], "text"),
            Column("created_at", t.entry_us, "ts"),
            Column("updated_at", np.where(t.is_open, t.entry_us, t.exit_us), "ts"),
        ),
    )


def _balances(spec: DatasetSpec, bots: Bots, t: Trades) -> tuple[Table, np.ndarray]:
    """Hourly balances per bot: initial capital + pnl of the (non-backtest) trades closed by
    then; and each bot's realized pnl at the end (1e-8 USD)."""
    _, pnl = _closed_pnl(t)
    counted = ~t.is_open & (t.source != "backtest")
    hours = spec.days * 24
    stamps = epoch_us(spec.start) + np.arange(1, hours + 1) * HOUR_US
    realized_at = np.zeros((hours, spec.bots), dtype=np.int64)
    realized = np.zeros(spec.bots, dtype=np.int64)
    for b in range(spec.bots):
        mine = np.flatnonzero(counted & (t.bot == b))
        order = np.argsort(t.exit_us[mine], kind="stable")
        exits = t.exit_us[mine][order]
        cumulative = np.concatenate([[0], np.cumsum(pnl[mine][order])])
        realized_at[:, b] = cumulative[np.searchsorted(exits, stamps, side="right")]
        realized[b] = cumulative[-1]
    balance = (bots.capital_cents * CENTS_TO_E8)[None, :] + realized_at
    rows = hours * spec.bots
    flat = balance.reshape(rows)
    table = Table(
        "trading.account_balance",
        rows,
        (
            Column("id", np.arange(1, rows + 1)),
            Column("bot_id", np.tile(np.array(bots.ids, dtype=object), hours), "text"),
            Column("ts", np.repeat(stamps, spec.bots), "ts"),
            Column("balance_usd", flat, "e8"),
            Column("equity_usd", flat, "e8"),
            Column("margin_used_usd", "0", "const"),
            Column("available_margin_usd", flat, "e8"),
            Column("unrealized_pnl_usd", "0", "const"),
            Column("snapshot_type", "periodic", "const"),
            Column("metadata", "{}", "const"),
        ),
    )
    return table, realized


def _candles(
    spec: DatasetSpec, paths: np.ndarray, vol: np.ndarray, symbols: np.ndarray, rng: Streams
) -> list[Table]:
    """The last ``candles_per_symbol`` minutes of every market's path, minute by minute; and
    the first market's path before them (a year at ``full``), so that the bench reads a year
    of one market's 1h candles derived from its minutes."""
    per = spec.candles_per_symbol
    first = paths.shape[1] - per
    every = _candle_block(spec, paths, vol, symbols, rng, first=first, ids_from=1)
    if first == 0:
        return [every]
    history = _candle_block(
        spec, paths[:1, :first], vol[:1], symbols[:1], rng, first=0, ids_from=every.rows + 1
    )
    return [every, history]


def _candle_block(
    spec: DatasetSpec,
    paths: np.ndarray,
    vol: np.ndarray,
    symbols: np.ndarray,
    rng: Streams,
    *,
    first: int,
    ids_from: int,
) -> Table:
    """The candles of the paths' minutes from ``first`` on, the last one ending at
    ``spec.until`` plus the minutes after the paths' end, minute by minute."""
    s = paths.shape[0]
    per = paths.shape[1] - first
    close = paths[:, first:]
    open_ = np.concatenate([paths[:, max(first - 1, 0) : max(first - 1, 0) + 1], close[:, :-1]], 1)
    if first == 0:
        open_[:, 0] = close[:, 0]
    stream = "candles" if ids_from == 1 else f"candles-{ids_from}"
    wick = np.abs(rng(stream, "wick").normal(0.0, 1.0, (2, s, per))) * vol[:, None] * 0.5
    high = np.ceil(np.maximum(open_, close) * (1 + wick[0])).astype(np.int64)
    low = np.maximum(np.floor(np.minimum(open_, close) * (1 - wick[1])), 1).astype(np.int64)
    notional = rng(stream, "volume").lognormal(0.0, 0.7, (s, per)) * 50_000.0
    volume = np.rint(notional / close * 10**8).astype(np.int64)  # 1e-4 units of the base

    rows = s * per
    minute0 = epoch_us(spec.until) - (spec.path_minutes - first) * MINUTE_US
    stamps = minute0 + np.arange(per) * MINUTE_US

    def by_minute(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.T).reshape(rows)

    return Table(
        "trading.market_data",
        rows,
        (
            Column("id", np.arange(ids_from, ids_from + rows)),
            Column("symbol", np.tile(symbols, per), "text"),
            Column("exchange", CANDLE_EXCHANGE, "const"),
            Column("timeframe", "1m", "const"),
            Column("ts", np.repeat(stamps, s), "ts"),
            Column("open", by_minute(open_), "e4"),
            Column("high", by_minute(high), "e4"),
            Column("low", by_minute(low), "e4"),
            Column("close", by_minute(close), "e4"),
            Column("volume", by_minute(volume), "e4"),
            Column("indicators", "{}", "const"),
        ),
    )
