"""Orders and fills: each trade's entry order, and its exit order (closed) or resting stop
(open); one fill per filled order, two for about a fifth. An order's filled quantity and fees
are its fills'; the entry and exit orders' fees are the trade's."""

import numpy as np

from benchmarks.dataset.columns import Column, Table, pick
from benchmarks.dataset.generate import Bots, Streams, Trades
from benchmarks.dataset.spec import LOSS_REASONS, QUOTE, STRATEGIES, WIN_REASONS

LIMIT_ENTRY_STRATEGIES = {"meanrev", "scalper", "grid"}


def trade_direction(t: Trades) -> np.ndarray:
    return np.where(t.short, -1, 1)


def trade_reasons(t: Trades) -> np.ndarray:
    reasons = np.where(
        t.win, pick(WIN_REASONS, t.reason_code), pick(LOSS_REASONS, t.reason_code)
    ).astype(object)
    reasons[t.is_open] = ""
    return reasons


def order_tables(
    bots: Bots, t: Trades, position_id: np.ndarray, symbols: np.ndarray, rng: Streams
) -> tuple[Table, Table]:
    """Each trade's entry order, and its exit order (closed) or resting stop (open); the fills
    of every filled order (one, or two for a fifth of them)."""
    n = len(t.bot)
    closed = np.flatnonzero(~t.is_open)
    still_open = np.flatnonzero(t.is_open)
    trade = np.concatenate([np.arange(n), closed, still_open])
    kind = np.concatenate(
        [np.zeros(n, np.int64), np.ones(len(closed), np.int64), np.full(len(still_open), 2)]
    )  # 0 entry, 1 exit, 2 stop
    m = len(trade)
    direction = trade_direction(t)[trade]
    buy = np.where(kind == 0, direction > 0, direction < 0)
    strategy_names = np.array([s[0] for s in STRATEGIES], dtype=object)
    limit_entry = np.isin(strategy_names[bots.strategy[t.bot[trade]]], list(LIMIT_ENTRY_STRATEGIES))
    reason = trade_reasons(t)[trade]
    order_type = np.where(
        kind == 0,
        np.where(limit_entry, "limit", "market"),
        np.where(
            kind == 2,
            "stop",
            np.where(reason == "roi", "limit", np.where(reason == "exit_signal", "market", "stop")),
        ),
    ).astype(object)
    price = np.where(kind == 1, t.exit_ticks[trade], t.entry_ticks[trade])
    bot = t.bot[trade]
    stop_ticks = np.maximum(
        np.rint(t.entry_ticks[trade] * (1 - direction * bots.loss_r[bot])), 1
    ).astype(np.int64)
    qty = t.qty[trade]
    filled = kind != 2
    fees = np.where(kind == 0, t.fee_entry[trade], np.where(kind == 1, t.fee_exit[trade], 0))
    at = np.where(kind == 1, t.exit_us[trade], t.entry_us[trade])
    latency = rng("orders", "latency").integers(50_000, 1_500_000, m)
    submitted = np.where(filled, at - latency, at + 500_000)
    exchange_ids = rng("orders", "exchange_id").integers(10**10, 10**11, m)
    suffix = np.array(["entry", "exit", "sl"], dtype=object)[kind]

    order = np.lexsort((kind, trade, submitted))
    trade, kind, bot, buy, order_type, price = (
        a[order] for a in (trade, kind, bot, buy, order_type, price)
    )
    stop_ticks, qty, filled, fees, at = (a[order] for a in (stop_ticks, qty, filled, fees, at))
    submitted, exchange_ids, suffix, latency = (
        a[order] for a in (submitted, exchange_ids, suffix, latency)
    )
    trade_ids = [f"T{s:07d}" for s in t.seq[trade].tolist()]
    is_limit = order_type == "limit"
    is_stop = order_type == "stop"
    orders = Table(
        "trading.orders",
        m,
        (
            Column("id", np.arange(1, m + 1)),
            Column("bot_id", np.array(bots.ids, dtype=object)[bot], "text"),
            Column(
                "client_order_id",
                [f"{a}-{b}" for a, b in zip(trade_ids, suffix.tolist(), strict=True)],
                "text",
            ),
            Column("exchange_order_id", exchange_ids),
            Column("trade_id", trade + 1),
            Column("position_id", position_id[trade], null=position_id[trade] == 0),
            Column("symbol", symbols[t.symbol[trade]], "text"),
            Column("side", np.where(buy, "buy", "sell").astype(object), "text"),
            Column("order_type", order_type, "text"),
            Column("quantity", qty, "e4"),
            Column("price", price, "e4", null=~is_limit),
            Column("stop_price", np.where(kind == 2, stop_ticks, price), "e4", null=~is_stop),
            Column("filled_quantity", np.where(filled, qty, 0), "e4"),
            Column("avg_fill_price", price, "e4", null=~filled),
            Column("fees_usd", fees, "e8"),
            Column("status", np.where(filled, "filled", "submitted").astype(object), "text"),
            Column("retry_count", "0", "const"),
            Column("last_error", "", "const"),
            Column("submitted_at", submitted, "ts"),
            Column("filled_at", at, "ts", null=~filled),
            Column("created_at", submitted, "ts"),
            Column("updated_at", np.where(filled, at, submitted), "ts"),
            Column("metadata", "{}", "const"),
        ),
    )

    # Fills: one per filled order, and a second one for about a fifth of them.
    f_order = np.flatnonzero(filled)
    two = (rng("fills", "split").random(len(f_order)) < 0.2) & (qty[f_order] >= 2)
    share = rng("fills", "share").uniform(0.2, 0.8, len(f_order))
    q = qty[f_order]
    q1 = np.where(two, np.clip(np.floor(q * share).astype(np.int64), 1, q - 1), q)
    fee = fees[f_order]
    fee1 = np.where(two, fee * q1 // q, fee)
    gap = np.rint(latency[f_order] * rng("fills", "gap").random(len(f_order))).astype(np.int64)
    second = np.flatnonzero(two)
    fill_order = np.concatenate([f_order, f_order[second]])
    fill_qty = np.concatenate([q1, (q - q1)[second]])
    fill_fee = np.concatenate([fee1, (fee - fee1)[second]])
    fill_at = np.concatenate([np.where(two, at[f_order] - gap, at[f_order]), at[f_order][second]])
    fill_no = np.concatenate([np.ones(len(f_order), np.int64), np.full(len(second), 2)])
    by_time = np.lexsort((fill_no, fill_order, fill_at))
    fill_order, fill_qty, fill_fee, fill_at, fill_no = (
        a[by_time] for a in (fill_order, fill_qty, fill_fee, fill_at, fill_no)
    )
    k = len(fill_order)
    fills = Table(
        "trading.order_fills",
        k,
        (
            Column("id", np.arange(1, k + 1)),
            Column("order_id", fill_order + 1),
            Column(
                "fill_id",
                [
                    f"{e}-{no}"
                    for e, no in zip(
                        exchange_ids[fill_order].tolist(), fill_no.tolist(), strict=True
                    )
                ],
                "text",
            ),
            Column("quantity", fill_qty, "e4"),
            Column("price", price[fill_order], "e4"),
            Column("fee", fill_fee, "e8"),
            Column("fee_currency", QUOTE, "const"),
            Column("filled_at", fill_at, "ts"),
        ),
    )
    return orders, fills
