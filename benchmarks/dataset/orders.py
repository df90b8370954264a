"""Orders and fills: each trade's entry order, and its exit order (closed) or resting stop
(open); one fill per filled order, two for about a fifth. An order's filled quantity and fees
are its fills'; the entry and exit orders' fees are the trade's."""

from typing import Any

import numpy as np

from benchmarks.dataset.columns import Chunks, Column, Table, pick, row_ids
from benchmarks.dataset.generate import Bots, Streams, Trades
from benchmarks.dataset.spec import LOSS_REASONS, QUOTE, STRATEGIES, WIN_REASONS

LIMIT_ENTRY_STRATEGIES = {"meanrev", "scalper", "grid"}


def trade_direction(t: Trades) -> np.ndarray:
    return np.where(t.short, -1, 1)


def trade_reasons(t: Trades, index: np.ndarray) -> np.ndarray:
    """The exit reasons of the trades at ``index`` ("" while open), an object array of str."""
    code = t.reason_code[index]
    reasons = np.where(t.win[index], pick(WIN_REASONS, code), pick(LOSS_REASONS, code))
    reasons[t.is_open[index]] = ""
    return reasons


def order_tables(
    bots: Bots, t: Trades, position_id: np.ndarray, symbols: np.ndarray, rng: Streams
) -> tuple[Table, Table]:
    """Each trade's entry order, and its exit order (closed) or resting stop (open); the fills
    of every filled order (one, or two for a fifth of them). What orders are, and in which
    order, is kept as integers; their other values are made a chunk at a time."""
    n = len(t.bot)
    closed = np.flatnonzero(~t.is_open)
    still_open = np.flatnonzero(t.is_open)
    trade = np.concatenate([np.arange(n), closed, still_open])
    kind = np.concatenate(
        [np.zeros(n, np.int8), np.ones(len(closed), np.int8), np.full(len(still_open), 2, np.int8)]
    )  # 0 entry, 1 exit, 2 stop
    del closed, still_open
    m = len(trade)
    latency = rng("orders", "latency").integers(50_000, 1_500_000, m)
    at = _order_time(t, trade, kind)
    submitted = np.where(kind != 2, at - latency, at + 500_000)
    del at
    exchange_ids = rng("orders", "exchange_id").integers(10**10, 10**11, m)

    order = np.lexsort((kind, trade, submitted))
    trade, kind, submitted = trade[order], kind[order], submitted[order]
    latency, exchange_ids = latency[order], exchange_ids[order]
    del order
    strategy_names = [s[0] for s in STRATEGIES]
    limit_strategy = np.array([s in LIMIT_ENTRY_STRATEGIES for s in strategy_names])
    names = np.array(bots.ids, dtype=object)

    def make(start: int, stop: int) -> dict[str, Any]:
        tr, k = trade[start:stop], kind[start:stop]
        direction = np.where(t.short[tr], -1, 1)
        bot = t.bot[tr]
        reason = trade_reasons(t, tr)
        order_type = np.where(
            k == 0,
            np.where(limit_strategy[bots.strategy[bot]], "limit", "market"),
            np.where(
                k == 2,
                "stop",
                np.where(
                    reason == "roi", "limit", np.where(reason == "exit_signal", "market", "stop")
                ),
            ),
        ).astype(object)
        price = _order_price(t, tr, k)
        stop_ticks = np.maximum(
            np.rint(t.entry_ticks[tr] * (1 - direction * bots.loss_r[bot])), 1
        ).astype(np.int64)
        qty = t.qty[tr]
        filled = k != 2
        buy = np.where(k == 0, direction > 0, direction < 0)
        at = _order_time(t, tr, k)
        sent = submitted[start:stop]
        suffix = ("entry", "exit", "sl")
        return {
            "bot_id": names[bot],
            "client_order_id": [
                f"T{s:07d}-{suffix[c]}" for s, c in zip(t.seq[tr].tolist(), k.tolist(), strict=True)
            ],
            "trade_id": tr + 1,
            "position_id": position_id[tr],
            "no_position": position_id[tr] == 0,
            "symbol": symbols[t.symbol[tr]],
            "side": pick(("sell", "buy"), buy.astype(np.int8)),
            "order_type": order_type,
            "not_limit": order_type != "limit",
            "not_stop": order_type != "stop",
            "quantity": qty,
            "price": price,
            "stop_price": np.where(k == 2, stop_ticks, price),
            "filled_quantity": np.where(filled, qty, 0),
            "unfilled": ~filled,
            "fees_usd": _order_fees(t, tr, k),
            "status": pick(("submitted", "filled"), filled.astype(np.int8)),
            "filled_at": at,
            "updated_at": np.where(filled, at, sent),
        }

    chunk = Chunks(make)
    orders = Table(
        "trading.orders",
        m,
        (
            Column("id", row_ids),
            Column("bot_id", chunk("bot_id"), "text"),
            Column("client_order_id", chunk("client_order_id"), "text"),
            Column("exchange_order_id", exchange_ids),
            Column("trade_id", chunk("trade_id")),
            Column("position_id", chunk("position_id"), null=chunk("no_position")),
            Column("symbol", chunk("symbol"), "text"),
            Column("side", chunk("side"), "text"),
            Column("order_type", chunk("order_type"), "text"),
            Column("quantity", chunk("quantity"), "e4"),
            Column("price", chunk("price"), "e4", null=chunk("not_limit")),
            Column("stop_price", chunk("stop_price"), "e4", null=chunk("not_stop")),
            Column("filled_quantity", chunk("filled_quantity"), "e4"),
            Column("avg_fill_price", chunk("price"), "e4", null=chunk("unfilled")),
            Column("fees_usd", chunk("fees_usd"), "e8"),
            Column("status", chunk("status"), "text"),
            Column("retry_count", "0", "const"),
            Column("last_error", "", "const"),
            Column("submitted_at", submitted, "ts"),
            Column("filled_at", chunk("filled_at"), "ts", null=chunk("unfilled")),
            Column("created_at", submitted, "ts"),
            Column("updated_at", chunk("updated_at"), "ts"),
            Column("metadata", "{}", "const"),
        ),
    )

    # Fills: one per filled order, and a second one for about a fifth of them.
    f_order = np.flatnonzero(kind != 2)
    q = t.qty[trade[f_order]]
    two = (rng("fills", "split").random(len(f_order)) < 0.2) & (q >= 2)
    share = rng("fills", "share").uniform(0.2, 0.8, len(f_order))
    q1 = np.where(two, np.clip(np.floor(q * share).astype(np.int64), 1, q - 1), q)
    del share
    fee = _order_fees(t, trade[f_order], kind[f_order])
    fee1 = np.where(two, fee * q1 // q, fee)
    gap = np.rint(latency[f_order] * rng("fills", "gap").random(len(f_order))).astype(np.int64)
    second = np.flatnonzero(two)
    fill_order = np.concatenate([f_order, f_order[second]])
    fill_qty = np.concatenate([q1, (q - q1)[second]])
    fill_fee = np.concatenate([fee1, (fee - fee1)[second]])
    del q, q1, fee, fee1
    at = _order_time(t, trade[f_order], kind[f_order])
    fill_at = np.concatenate([np.where(two, at - gap, at), at[second]])
    del at, gap, two
    fill_no = np.concatenate([np.ones(len(f_order), np.int8), np.full(len(second), 2, np.int8)])
    del f_order, second
    by_time = np.lexsort((fill_no, fill_order, fill_at))
    fill_order, fill_qty, fill_fee, fill_at, fill_no = (
        a[by_time] for a in (fill_order, fill_qty, fill_fee, fill_at, fill_no)
    )
    del by_time

    def fill_ids(start: int, stop: int) -> list[str]:
        ids, nos = exchange_ids[fill_order[start:stop]], fill_no[start:stop]
        return [f"{e}-{no}" for e, no in zip(ids.tolist(), nos.tolist(), strict=True)]

    def fill_prices(start: int, stop: int) -> np.ndarray:
        index = fill_order[start:stop]
        return _order_price(t, trade[index], kind[index])

    fills = Table(
        "trading.order_fills",
        len(fill_order),
        (
            Column("id", row_ids),
            Column("order_id", lambda a, z: fill_order[a:z] + 1),
            Column("fill_id", fill_ids, "text"),
            Column("quantity", fill_qty, "e4"),
            Column("price", fill_prices, "e4"),
            Column("fee", fill_fee, "e8"),
            Column("fee_currency", QUOTE, "const"),
            Column("filled_at", fill_at, "ts"),
        ),
    )
    return orders, fills


def _order_time(t: Trades, trade: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """When orders of ``kind`` for ``trade`` filled (exit: the trade's exit; else its entry)."""
    return np.where(kind == 1, t.exit_us[trade], t.entry_us[trade])


def _order_price(t: Trades, trade: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return np.where(kind == 1, t.exit_ticks[trade], t.entry_ticks[trade])


def _order_fees(t: Trades, trade: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return np.where(kind == 0, t.fee_entry[trade], np.where(kind == 1, t.fee_exit[trade], 0))
