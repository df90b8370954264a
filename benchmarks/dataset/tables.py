"""The rows of every table, derived from the bots, the trades and the price paths.

Consistency by construction: a closed trade's pnl is (exit - entry) x quantity x direction -
fees, to the 1e-8; its orders' fees add up to the trade's and its fills' to the order's; each
open trade has its open position (one per bot, market and side) and a resting stop order; a
bot's hourly balance is its initial capital plus the pnl of the trades it closed by then.
"""

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.dataset.columns import Chunks, Column, Table, pick, row_ids
from benchmarks.dataset.generate import (
    MINUTE_US,
    SOURCES,
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


def dataset_tables(spec: DatasetSpec) -> Iterator[Table]:
    """Every table of the data set, in load order (referenced tables first), each made when the
    one before it has been sent: a table's values are dropped before the next one's are made,
    and the candles and every text column are made a chunk at a time (Column's lazy values)."""
    rng = Streams(spec.seed)
    paths, vol = price_paths(spec, rng)
    bots = make_bots(spec, rng)
    trades = make_trades(spec, bots, paths, rng)
    symbols = np.array([f"{b}/{QUOTE}" for b in BASES[: spec.symbols]], dtype=object)
    positions, position_id, unrealized = _positions(spec, bots, trades, paths, symbols)
    balances, realized = _balances(spec, bots, trades)
    yield _bots(spec, bots, realized, unrealized)
    yield positions
    yield _trades(spec, bots, trades, position_id, symbols)
    orders, fills = order_tables(bots, trades, position_id, symbols, rng)
    yield orders
    del orders
    yield fills
    del fills, trades, position_id
    yield balances
    del balances
    yield from _candles(spec, paths, vol, symbols, rng)


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
                "scale": spec.scale,
                "candles": spec.symbols * spec.candles_per_symbol,
                "symbols": spec.symbols,
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
    names = np.array(bots.ids, dtype=object)
    exchanges = np.array(bots.exchange, dtype=object)
    tag_names = [STRATEGIES[s][1] for s in range(len(STRATEGIES))]
    strategy_data = np.array(
        [json.dumps({"timeframe": s[2], "strategy": s[0]}) for s in STRATEGIES], dtype=object
    )

    def texts(start: int, stop: int) -> dict[str, Any]:
        rows = slice(start, stop)
        strategy = bots.strategy[t.bot[rows]]
        return {
            "bot_id": names[t.bot[rows]],
            "trade_id": [f"T{s:07d}" for s in t.seq[rows].tolist()],
            "symbol": symbols[t.symbol[rows]],
            "exchange": exchanges[t.bot[rows]],
            "side": pick(("long", "short"), t.short[rows].astype(np.int8)),
            "pnl_pct": np.array(
                pnl_pct(pnl[rows], t.entry_ticks[rows] * t.qty[rows]), dtype=np.int64
            ),
            "status": pick(("closed", "open"), t.is_open[rows].astype(np.int8)),
            "source": pick(SOURCES, t.source[rows]),
            "exit_reason": trade_reasons(t, np.arange(start, stop)),
            "entry_tag": [
                tag_names[s][c % len(tag_names[s])]
                for s, c in zip(strategy.tolist(), t.tag_code[rows].tolist(), strict=True)
            ],
            "strategy_data": strategy_data[strategy],
        }

    chunk = Chunks(texts)
    return Table(
        "trading.trades",
        n,
        (
            Column("id", row_ids),
            Column("bot_id", chunk("bot_id"), "text"),
            Column("trade_id", chunk("trade_id"), "text"),
            Column("symbol", chunk("symbol"), "text"),
            Column("exchange", chunk("exchange"), "text"),
            Column("side", chunk("side"), "text"),
            Column("quantity", t.qty, "e4"),
            Column("entry_price", t.entry_ticks, "e4"),
            Column("exit_price", t.exit_ticks, "e4", null=t.is_open),
            Column("entry_time", t.entry_us, "ts"),
            Column("exit_time", t.exit_us, "ts", null=t.is_open),
            Column("fees_usd", fees, "e8"),
            Column("pnl_usd", pnl, "e8", null=t.is_open),
            Column("pnl_pct", chunk("pnl_pct"), "e6", null=t.is_open),
            Column("status", chunk("status"), "text"),
            Column("source", chunk("source"), "text"),
            Column("leverage", lambda a, z: bots.leverage[t.bot[a:z]]),
            Column("exit_reason", chunk("exit_reason"), "text"),
            Column("entry_tag", chunk("entry_tag"), "text"),
            Column("position_id", position_id, null=position_id == 0),
            Column("strategy_data", chunk("strategy_data"), "text"),
            Column("created_at", t.entry_us, "ts"),
            Column("updated_at", np.where(t.is_open, t.entry_us, t.exit_us), "ts"),
        ),
    )


def _balances(spec: DatasetSpec, bots: Bots, t: Trades) -> tuple[Table, np.ndarray]:
    """Hourly balances per bot: initial capital + pnl of the (non-backtest) trades closed by
    then; and each bot's realized pnl at the end (1e-8 USD)."""
    _, pnl = _closed_pnl(t)
    counted = np.flatnonzero(~t.is_open & (t.source != SOURCES.index("backtest")))
    counted = counted[np.lexsort((t.exit_us[counted], t.bot[counted]))]  # by bot, then exit
    bounds = np.searchsorted(t.bot[counted], np.arange(spec.bots + 1))
    hours = spec.days * 24
    stamps = epoch_us(spec.start) + np.arange(1, hours + 1) * HOUR_US
    realized_at = np.zeros((hours, spec.bots), dtype=np.int64)
    realized = np.zeros(spec.bots, dtype=np.int64)
    for b in range(spec.bots):
        mine = counted[bounds[b] : bounds[b + 1]]
        cumulative = np.concatenate([[0], np.cumsum(pnl[mine])])
        realized_at[:, b] = cumulative[np.searchsorted(t.exit_us[mine], stamps, side="right")]
        realized[b] = cumulative[-1]
    flat = ((bots.capital_cents * CENTS_TO_E8)[None, :] + realized_at).reshape(-1)
    names = np.array(bots.ids, dtype=object)
    table = Table(
        "trading.account_balance",
        len(flat),
        (
            Column("id", row_ids),
            Column("bot_id", lambda a, z: names[np.arange(a, z) % spec.bots], "text"),
            Column("ts", lambda a, z: stamps[np.arange(a, z) // spec.bots], "ts"),
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
) -> Iterator[Table]:
    """The first market's path before the last ``candles_per_symbol`` minutes (most of a year
    at ``full``), so that the bench reads a year of one market's 1h candles derived from its
    minutes; then those last minutes of every market's path, minute by minute."""
    per = spec.candles_per_symbol
    first = paths.shape[1] - per  # path index of the first candle's minute
    before = 0
    if first > 0:  # sent first, so that the ids stay in time order
        history = _candle_block(
            spec,
            paths[:1, :first],
            vol[:1],
            symbols[:1],
            rng,
            markets=1,
            first=0,
            stream="candles-history",
            path_minutes=paths.shape[1],
        )
        before = history.rows
        yield history
    yield _candle_block(
        spec,
        paths,
        vol,
        symbols,
        rng,
        markets=spec.symbols,
        first=first,
        stream="candles",
        ids_from=before,
    )


def _candle_block(
    spec: DatasetSpec,
    paths: np.ndarray,
    vol: np.ndarray,
    symbols: np.ndarray,
    rng: Streams,
    *,
    markets: int,
    first: int,
    stream: str,
    ids_from: int = 0,
    path_minutes: int | None = None,
) -> Table:
    """The candles of the first ``markets`` paths' minutes from ``first`` to the paths' end,
    minute by minute, made a chunk at a time: a row's wicks and volume are the next draws of
    their streams, which are drawn in row order, so any chunking gives the same rows. A path
    minute m opens at ``until`` less (``path_minutes`` - m) minutes."""
    s = markets
    per = paths.shape[1] - first
    total = paths.shape[1] if path_minutes is None else path_minutes
    until = epoch_us(spec.until)
    streams = {name: rng(stream, name) for name in ("wick_high", "wick_low", "volume")}
    sent = [0]  # rows drawn so far

    def make(start: int, stop: int) -> dict[str, Any]:
        if start != sent[0]:
            raise ValueError("candles are made once, in row order")
        sent[0] = stop
        rows = np.arange(start, stop)
        minute, market = rows // s + first, rows % s
        close = paths[market, minute]
        open_ = np.where(minute > 0, paths[market, np.maximum(minute - 1, 0)], close)
        size = stop - start
        wick_high = np.abs(streams["wick_high"].normal(0.0, 1.0, size)) * vol[market] * 0.5
        wick_low = np.abs(streams["wick_low"].normal(0.0, 1.0, size)) * vol[market] * 0.5
        notional = streams["volume"].lognormal(0.0, 0.7, size) * 50_000.0
        return {
            "symbol": symbols[market],
            "ts": until - (total - minute) * MINUTE_US,
            "open": open_,
            "high": np.ceil(np.maximum(open_, close) * (1 + wick_high)).astype(np.int64),
            "low": np.maximum(np.floor(np.minimum(open_, close) * (1 - wick_low)), 1).astype(
                np.int64
            ),
            "close": close,
            "volume": np.rint(notional / close * 10**8).astype(np.int64),  # 1e-4 of the base
        }

    def ids(start: int, stop: int) -> np.ndarray:
        return row_ids(start + ids_from, stop + ids_from)

    chunk = Chunks(make)
    return Table(
        "trading.market_data",
        s * per,
        (
            Column("id", ids),
            Column("symbol", chunk("symbol"), "text"),
            Column("exchange", CANDLE_EXCHANGE, "const"),
            Column("timeframe", "1m", "const"),
            Column("ts", chunk("ts"), "ts"),
            Column("open", chunk("open"), "e4"),
            Column("high", chunk("high"), "e4"),
            Column("low", chunk("low"), "e4"),
            Column("close", chunk("close"), "e4"),
            Column("volume", chunk("volume"), "e4"),
            Column("indicators", "{}", "const"),
        ),
    )
