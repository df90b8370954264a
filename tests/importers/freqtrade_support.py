"""freqtrade's own definitions of its statistics, recomputed in plain Python from closed trades.

For the figures where METRICS.md defines the same name differently, the tests recompute
freqtrade's figure by freqtrade's definition (freqtrade.data.metrics, 2026.9) from the trades we
imported, and check it equals the oracle: so the figure differs by definition only, not because
a trade was imported wrong. numpy's ``std`` is the population deviation (ddof 0), pandas' the
sample one (ddof 1); both as freqtrade calls them.
"""

import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ClosedTrade:
    id: int
    close_date: datetime
    profit_abs: float


def source_rows(path: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql)]
    finally:
        conn.close()


def naive_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _pstdev(values: list[float]) -> float:  # numpy.std
    if not values:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _sstdev(values: list[float]) -> float:  # pandas Series.std
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def drawdown(trades: list[ClosedTrade], starting_balance: float) -> dict[str, float]:
    """calculate_max_drawdown: cumulative profit in close-date order, its peak floored at 0."""
    ordered = sorted(trades, key=lambda t: (t.close_date, t.id))
    cumulative = high = 0.0
    worst_abs = worst_abs_relative = worst_relative = 0.0
    for trade in ordered:
        cumulative += trade.profit_abs
        high = max(high, cumulative)
        fall = high - cumulative
        relative = fall / (starting_balance + high)
        if fall > worst_abs:
            worst_abs, worst_abs_relative = fall, relative
        worst_relative = max(worst_relative, relative)
    return {
        "drawdown_abs": worst_abs,
        "relative_at_largest_abs": worst_abs_relative,
        "largest_relative": worst_relative,
    }


def sharpe(trades: list[ClosedTrade], days: int, starting_balance: float) -> float:
    returns = [t.profit_abs / starting_balance for t in trades]
    return sum(returns) / max(1, days) / _pstdev(returns) * math.sqrt(365)


def sortino(trades: list[ClosedTrade], days: int, starting_balance: float) -> float:
    returns = [t.profit_abs / starting_balance for t in trades]
    down = _pstdev([r for r in returns if r < 0])
    return sum(returns) / max(1, days) / down * math.sqrt(365)


def calmar(trades: list[ClosedTrade], days: int, starting_balance: float) -> float:
    mean = sum(t.profit_abs for t in trades) / starting_balance / max(1, days) * 100
    relative = drawdown(trades, starting_balance)["relative_at_largest_abs"]
    return mean / relative * math.sqrt(365)


def sqn(trades: list[ClosedTrade], starting_balance: float) -> float:
    returns = [t.profit_abs / starting_balance for t in trades]
    mean = sum(returns) / len(returns)
    return round(math.sqrt(len(returns)) * mean / _sstdev(returns), 4)


def cagr(starting_balance: float, final_balance: float, days: float) -> float:
    return (final_balance / starting_balance) ** (1 / (days / 365)) - 1


# --- a large source, for the import's speed ----------------------------------------------------

SHIFT = timedelta(hours=6)  # between two copies of the sample: copies go back in time


def _shifted(value: str | None, copy: int) -> str | None:
    if value is None:
        return None
    return (datetime.fromisoformat(value) - SHIFT * copy).strftime("%Y-%m-%d %H:%M:%S.%f")


def synthesize(sample: Path, path: Path, *, trades: int = 100_000) -> dict[str, int]:
    """A freqtrade database of ``trades`` trades at ``path``: the sample as it is (its open
    trades included), then copies of its closed trades with their orders, under new ids and
    order_ids, each copy shifted ``SHIFT`` further back. Returns what it holds, by table.

    ``python -m tests.importers.freqtrade_support <sample> <path> [trades]`` builds one.
    """
    path.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{sample}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    try:
        source.backup(target)  # the sample's WAL included, which a file copy would miss
    finally:
        source.close()
    target.row_factory = sqlite3.Row
    sample_trades = [dict(r) for r in target.execute("SELECT * FROM trades ORDER BY id")]
    sample_orders: dict[int, list[dict[str, Any]]] = {}
    for row in target.execute("SELECT * FROM orders ORDER BY id"):
        sample_orders.setdefault(row["ft_trade_id"], []).append(dict(row))
    closed = [t for t in sample_trades if not t["is_open"]]
    if trades < len(sample_trades):
        raise ValueError(f"at least the sample's {len(sample_trades)} trades")
    trade_id = max(t["id"] for t in sample_trades)
    order_id = max((o["id"] for os in sample_orders.values() for o in os), default=0)
    new_trades: list[dict[str, Any]] = []
    new_orders: list[dict[str, Any]] = []
    for n in range(trades - len(sample_trades)):
        copy, original = divmod(n, len(closed))
        trade = closed[original]
        trade_id += 1
        new_trades.append(
            {
                **trade,
                "id": trade_id,
                "open_date": _shifted(trade["open_date"], copy + 1),
                "close_date": _shifted(trade["close_date"], copy + 1),
            }
        )
        for order in sample_orders.get(trade["id"], []):
            order_id += 1
            new_orders.append(
                {
                    **order,
                    "id": order_id,
                    "ft_trade_id": trade_id,
                    "order_id": f"syn{order_id}",
                    **{
                        name: _shifted(order[name], copy + 1)
                        for name in ("order_date", "order_filled_date", "order_update_date")
                    },
                }
            )
    for table, rows in (("trades", new_trades), ("orders", new_orders)):
        if rows:
            names = list(rows[0])
            target.executemany(
                f"INSERT INTO {table} ({', '.join(names)})"  # noqa: S608 - the sample's columns
                f" VALUES ({', '.join('?' for _ in names)})",
                [tuple(r[name] for name in names) for r in rows],
            )
    target.commit()
    counts = {
        table: target.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("trades", "orders")
    }
    counts["filled_orders"] = target.execute(
        "SELECT count(*) FROM orders WHERE filled > 0"
    ).fetchone()[0]
    counts["open_trades"] = target.execute(
        "SELECT count(*) FROM trades WHERE is_open = 1"
    ).fetchone()[0]
    target.close()
    return counts


if __name__ == "__main__":
    import sys

    sample_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    print(synthesize(sample_path, out_path, trades=size))
