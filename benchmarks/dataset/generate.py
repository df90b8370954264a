"""The data set as numpy columns: every value follows from the seed and the end time.

One random walk per market gives the one-minute candles and the trades' entry prices. Each bot
has its own win rate, stake, fee rate, holding time and markets; its trades are drawn in one
vectorised pass, so that a million trades take seconds. Every random draw comes from a stream
named for what it draws (``_rng("trades", "side")``), so changing one part leaves the others'
draws alone, and the same seed gives the same rows.

Physical order is time order (trades by entry, orders by submission, candles by minute then
market), as ingestion would have written them, so the bench reads a realistic heap rather than
one sorted per bot or per market.
"""

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.dataset.spec import (
    BASES,
    EXCHANGES,
    KNOWN_PRICES,
    PRICE_SCALE,
    QTY_SCALE,
    STRATEGIES,
    WIN_REASONS,
    DatasetSpec,
)

US = 1_000_000  # microseconds a second
MINUTE_US = 60 * US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_HOLD_MINUTES = 14 * 24 * 60
OPEN_WINDOW_MINUTES = 2 * 24 * 60  # open trades were entered within the last two days
SOURCES = ("live", "paper", "backtest", "imported")


def epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


class Streams:
    """Independent random streams, one per name, all from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, *names: str) -> np.random.Generator:
        key = zlib.crc32(":".join(names).encode())
        return np.random.default_rng([self.seed, key])


@dataclass
class Bots:
    ids: list[str]
    strategy: np.ndarray  # index into STRATEGIES
    status: list[str]
    mode: list[str]
    exchange: list[str]
    capital_cents: np.ndarray
    win_p: np.ndarray
    win_r: np.ndarray
    loss_r: np.ndarray
    fee_rate: np.ndarray
    stake: np.ndarray  # share of capital per trade
    short_share: np.ndarray
    leverage: np.ndarray
    hold_mu: np.ndarray  # log of the typical holding time in minutes
    markets: np.ndarray  # (bots, 8): market indexes, the first n_markets used
    n_markets: np.ndarray
    trades: np.ndarray  # trades per bot
    n_open: np.ndarray


@dataclass
class Trades:
    bot: np.ndarray
    symbol: np.ndarray
    short: np.ndarray
    entry_us: np.ndarray
    exit_us: np.ndarray  # 0 while open
    is_open: np.ndarray
    entry_ticks: np.ndarray
    exit_ticks: np.ndarray
    qty: np.ndarray
    fee_entry: np.ndarray
    fee_exit: np.ndarray
    win: np.ndarray
    source: np.ndarray  # index into SOURCES
    reason_code: np.ndarray  # index into WIN_REASONS or LOSS_REASONS
    tag_code: np.ndarray  # index into the strategy's entry tags (modulo their number)
    seq: np.ndarray  # the trade's number within its bot, in entry order


def _market_prices(spec: DatasetSpec, rng: Streams) -> tuple[np.ndarray, np.ndarray]:
    """Start prices and per-minute volatility of the first ``spec.symbols`` markets."""
    draw = rng("markets")
    n = spec.symbols
    prices = np.exp(draw.uniform(np.log(0.05), np.log(400.0), n))
    for i, base in enumerate(BASES[:n]):
        prices[i] = KNOWN_PRICES.get(base, prices[i])
    vol = draw.uniform(0.0005, 0.0012, n)
    return prices, vol


def price_paths(spec: DatasetSpec, rng: Streams) -> tuple[np.ndarray, np.ndarray]:
    """Closes of every minute of the path, in ticks: an array (markets, minutes); and the
    markets' one-minute volatility."""
    start, vol = _market_prices(spec, rng)
    minutes = spec.path_minutes
    paths = np.empty((spec.symbols, minutes), dtype=np.int64)
    for m in range(spec.symbols):
        steps = rng("path", str(m)).normal(0.0, vol[m], minutes)
        closes = start[m] * np.exp(np.cumsum(steps))
        paths[m] = np.maximum(np.rint(closes * PRICE_SCALE), 1).astype(np.int64)
    return paths, vol


def make_bots(spec: DatasetSpec, rng: Streams) -> Bots:
    n = spec.bots
    draw = rng("bots")
    index = np.arange(n)
    strategy = index % len(STRATEGIES)
    ids = [f"{STRATEGIES[s][0]}_{i + 1:03d}" for i, s in enumerate(strategy)]
    status = ["paused" if i % 10 == 7 else "stopped" if i % 25 == 13 else "active" for i in index]
    mode = ["paper" if i % 5 == 4 else "live" for i in index]
    exchange = [EXCHANGES[k] for k in draw.integers(0, len(EXCHANGES), n)]
    capital = np.clip(np.round(np.exp(draw.normal(np.log(20_000), 1.0, n)), -3), 1_000, 500_000)
    win_p = draw.uniform(0.35, 0.68, n)
    loss_r = draw.uniform(0.004, 0.02, n)
    fee_rate = np.array([0.0002, 0.0004, 0.00075, 0.001])[draw.integers(0, 4, n)]
    edge = draw.normal(0.0003, 0.0008, n)  # expected net return per trade, of the notional
    win_r = np.maximum((loss_r * (1 - win_p) + 2 * fee_rate + edge) / win_p, 2 * fee_rate + 0.001)
    spot = (draw.random(n) < 0.4) & (strategy != 6)  # shortsellers trade derivatives
    short_share = np.where(spot, 0.0, draw.uniform(0.2, 0.6, n))
    short_share[strategy == 6] = 0.85
    leverage = np.where(spot, 1, np.array([2, 3, 5])[draw.integers(0, 3, n)])
    hold_mu = draw.uniform(np.log(10), np.log(720), n)
    n_markets = np.minimum(draw.integers(2, 9, n), spec.symbols)
    # Eight slots of distinct markets (repeated when there are fewer; only n_markets are read).
    markets = np.stack([np.resize(draw.permutation(spec.symbols), 8) for _ in index])
    weights = np.exp(draw.normal(0.0, 0.7, n))
    trades = np.floor(weights / weights.sum() * (spec.trades - n)).astype(np.int64) + 1
    remainder = spec.trades - int(trades.sum())
    trades[np.argsort(-weights, kind="stable")[:remainder]] += 1
    stake = draw.uniform(0.03, 0.15, n)
    n_open = np.where(
        np.array(status) == "active", np.minimum(draw.integers(0, 5, n), n_markets), 0
    )
    n_open = np.minimum(n_open, trades)
    return Bots(
        ids=ids,
        strategy=strategy,
        status=status,
        mode=mode,
        exchange=exchange,
        capital_cents=(capital * 100).astype(np.int64),
        win_p=win_p,
        win_r=win_r,
        loss_r=loss_r,
        fee_rate=fee_rate,
        stake=stake,
        short_share=short_share,
        leverage=leverage,
        hold_mu=hold_mu,
        markets=markets,
        n_markets=n_markets,
        trades=trades,
        n_open=n_open,
    )


def make_trades(spec: DatasetSpec, bots: Bots, paths: np.ndarray, rng: Streams) -> Trades:
    n = spec.trades
    hist = spec.history_minutes
    offset = spec.path_minutes - hist  # path index of the history's first minute
    start_us = epoch_us(spec.start)
    bot = np.repeat(np.arange(spec.bots), bots.trades)

    entry_min = rng("trades", "entry").integers(0, hist - 1, n)
    slot = (rng("trades", "market").random(n) * bots.n_markets[bot]).astype(np.int64)
    is_open = np.zeros(n, dtype=bool)
    # A bot's open trades: one per market (positions allow one open per market and side),
    # entered within the last two days.
    firsts = np.cumsum(bots.trades) - bots.trades
    open_idx = np.concatenate(
        [firsts[b] + np.arange(bots.n_open[b]) for b in range(spec.bots)] or [np.empty(0)]
    ).astype(np.int64)
    open_slot = np.concatenate(
        [np.arange(bots.n_open[b]) for b in range(spec.bots)] or [np.empty(0)]
    ).astype(np.int64)
    is_open[open_idx] = True
    slot[open_idx] = open_slot
    entry_min[open_idx] = hist - rng("trades", "open").integers(
        5, OPEN_WINDOW_MINUTES, len(open_idx)
    )
    symbol = bots.markets[bot, slot]
    short = rng("trades", "side").random(n) < bots.short_share[bot]

    hold = np.rint(np.exp(rng("trades", "hold").normal(bots.hold_mu[bot], 1.0)))
    exit_min = np.minimum(entry_min + np.clip(hold, 1, MAX_HOLD_MINUTES), hist - 1)
    seconds = rng("trades", "seconds").integers(0, 60 * US, (2, n))
    entry_us = start_us + entry_min * MINUTE_US + seconds[0]
    exit_us = np.where(is_open, 0, start_us + exit_min * MINUTE_US + seconds[1])

    entry_ticks = paths[symbol, offset + entry_min]
    win = rng("trades", "win").random(n) < bots.win_p[bot]
    size = rng("trades", "size").lognormal(0.0, 0.5, n) / np.exp(0.125)
    move = np.where(win, bots.win_r[bot], -bots.loss_r[bot]) * size
    direction = np.where(short, -1, 1)
    exit_ticks = np.maximum(np.rint(entry_ticks * (1 + direction * move)), 1).astype(np.int64)
    exit_ticks[is_open] = 0

    notional = bots.capital_cents[bot] / 100 * bots.stake[bot]
    notional = notional * rng("trades", "stake").lognormal(0.0, 0.3, n)
    qty = np.maximum(np.rint(notional / entry_ticks * PRICE_SCALE * QTY_SCALE), 1).astype(np.int64)
    fee_entry = np.rint(entry_ticks * qty * bots.fee_rate[bot]).astype(np.int64)
    fee_exit = np.rint(exit_ticks * qty * bots.fee_rate[bot]).astype(np.int64)

    source_draw = rng("trades", "source").random(n)
    live = (np.array(bots.mode) == "live")[bot]
    source = np.where(
        live, np.where(source_draw < 0.02, 2, np.where(source_draw < 0.03, 3, 0)), 1
    ).astype(np.int8)

    # Time order: ids follow entry time; a bot numbers its trades in the same order.
    order = np.lexsort((bot, entry_us))
    trades = Trades(
        bot=bot[order],
        symbol=symbol[order],
        short=short[order],
        entry_us=entry_us[order],
        exit_us=exit_us[order],
        is_open=is_open[order],
        entry_ticks=entry_ticks[order],
        exit_ticks=exit_ticks[order],
        qty=qty[order],
        fee_entry=fee_entry[order],
        fee_exit=fee_exit[order],
        win=win[order],
        source=source[order],
        reason_code=rng("trades", "reason").integers(0, len(WIN_REASONS), n)[order],
        tag_code=rng("trades", "tag").integers(0, 6, n)[order],
        seq=np.zeros(n, dtype=np.int64),
    )
    by_bot = np.lexsort((trades.entry_us, trades.bot))
    firsts_sorted = np.repeat(firsts, bots.trades)
    trades.seq[by_bot] = np.arange(n) - firsts_sorted + 1
    return trades
