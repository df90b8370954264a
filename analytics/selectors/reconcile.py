"""Live against backtest (issue 18): the closed trades of a live run matched to those of a
backtest run of the same bot, and the whole difference in P&L explained as the sum of parts.

Matching: same symbol and side, entries at most ``tolerance`` apart, one to one; among the
candidate pairs the closest entries are matched first (ties: the earlier live entry, then the
earlier backtest entry, then ids), so the result does not depend on the order rows are read.

For a matched pair (live l, backtest b; d = +1 long, -1 short; q quantity, e entry, x exit,
f fees), with pnl = d (x - e) q - f, the pnl difference is split exactly:

  entry effect  = -d (e_l - e_b) q_l      (paying more to enter a long costs)
  exit effect   =  d (x_l - x_b) q_l
  size effect   =  d (x_b - e_b) (q_l - q_b)
  fee effect    = -(f_l - f_b)
  other         = the rest: what the stored pnl holds beyond price, size and fees (funding,
                  a bot's own rounding); 0 when pnl_usd is the formula's

so that pnl_l - pnl_b = the sum of the five. The run totals: live pnl - backtest pnl = the
matched pairs' differences + the live-only trades' pnl - the backtest-only trades' pnl, every
sum exact in Decimal. pnl and fees are stored to the cent's millionth, so every difference of
them is exact; the price parts are rounded to it (half-even) and "other" takes that rounding,
so the parts as reported sum to the reported difference to the last digit.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from typing import Any

from atb_site.db.replicas import read_connection
from trading.models import Bot, BotRun

USD = Decimal("1e-8")
PCT = Decimal("1e-6")
_PARTS = ("entry", "exit", "size", "fee", "other")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Times as integer microseconds since the epoch: read ten times faster than timestamptz values
# (each made an aware datetime), and compared and subtracted as plain integers.
_TRADES_SQL = """
SELECT t.id, t.trade_id, t.symbol, t.side, t.quantity, t.entry_price, t.exit_price,
       (extract(epoch FROM t.entry_time) * 1000000)::bigint,
       (extract(epoch FROM t.exit_time) * 1000000)::bigint, t.fees_usd, t.pnl_usd
FROM trading.trades AS t
WHERE t.bot_id = %(bot_id)s AND t.run_id = %(run_id)s AND t.status = 'closed'
ORDER BY t.symbol, t.side, t.entry_time, t.id
"""


class ReconcileRefused(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class _Trade:
    id: int
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    entry_us: int
    exit_us: int
    fees_usd: Decimal
    pnl_usd: Decimal


def _usd(value: Decimal) -> Decimal:
    return value.quantize(USD, rounding=ROUND_HALF_EVEN)


def _parts_usd(parts: dict[str, Decimal], whole: Decimal) -> dict[str, Decimal]:
    """``parts`` rounded as USD, "other" taking the rounding so that they sum to ``whole``
    (itself a sum of USD amounts: exact) to the last digit."""
    rounded = {name: _usd(parts[name]) for name in _PARTS if name != "other"}
    rounded["other"] = whole - sum(rounded.values(), Decimal(0))
    return rounded


def _slippage_pct(live: Decimal, backtest: Decimal, sign: int) -> Decimal:
    """How much worse (positive) live's price was, in % of the backtest's: for a long, a
    higher entry or a lower exit; ``sign`` +1 for an entry, -1 for an exit of a long."""
    return (sign * (live - backtest) / backtest * 100).quantize(PCT, rounding=ROUND_HALF_EVEN)


def _pair_parts(live: _Trade, bt: _Trade) -> dict[str, Decimal]:
    d = 1 if live.side == "long" else -1
    parts = {
        "entry": -d * (live.entry_price - bt.entry_price) * live.quantity,
        "exit": d * (live.exit_price - bt.exit_price) * live.quantity,
        "size": d * (bt.exit_price - bt.entry_price) * (live.quantity - bt.quantity),
        "fee": -(live.fees_usd - bt.fees_usd),
    }
    parts["other"] = (live.pnl_usd - bt.pnl_usd) - sum(parts.values(), Decimal(0))
    return parts


def _run(bot: Bot, run_id: int, field: str) -> BotRun:
    run = BotRun.objects.filter(bot=bot, pk=run_id).first()
    if run is None:
        raise ReconcileRefused(field, f"{bot.bot_id} has no run {run_id}")
    return run


def _trades(bot: Bot, run_id: int) -> list[_Trade]:
    with read_connection().cursor() as cursor:
        cursor.execute(_TRADES_SQL, {"bot_id": bot.bot_id, "run_id": run_id})
        return [_Trade(*row) for row in cursor.fetchall()]


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _matches(
    live: list[_Trade], backtest: list[_Trade], tolerance: timedelta
) -> list[tuple[_Trade, _Trade]]:
    """One-to-one pairs, closest entries first (see the module's docstring)."""
    window = tolerance // timedelta(microseconds=1)
    groups: dict[tuple[str, str], list[_Trade]] = {}
    for trade in backtest:
        groups.setdefault((trade.symbol, trade.side), []).append(trade)
    for group in groups.values():
        group.sort(key=lambda t: (t.entry_us, t.id))
    times = {key: [t.entry_us for t in group] for key, group in groups.items()}
    candidates: list[tuple[tuple[int, int, int, int, int], _Trade, _Trade]] = []
    for trade in live:
        key = (trade.symbol, trade.side)
        if key not in groups:
            continue
        low = bisect_left(times[key], trade.entry_us - window)
        high = bisect_right(times[key], trade.entry_us + window)
        for other in groups[key][low:high]:
            gap = abs(trade.entry_us - other.entry_us)
            candidates.append(((gap, trade.entry_us, other.entry_us, trade.id, other.id),
                               trade, other))  # fmt: skip
    candidates.sort(key=itemgetter(0))
    taken_live: set[int] = set()
    taken_bt: set[int] = set()
    pairs = []
    for _, trade, other in candidates:
        if trade.id in taken_live or other.id in taken_bt:
            continue
        taken_live.add(trade.id)
        taken_bt.add(other.id)
        pairs.append((trade, other))
    pairs.sort(key=lambda p: (p[0].entry_us, p[0].id))
    return pairs


def _trade_json(trade: _Trade) -> dict[str, Any]:
    return {
        "id": trade.id,
        "trade_id": trade.trade_id,
        "symbol": trade.symbol,
        "side": trade.side,
        "entry_time": _moment(trade.entry_us),
        "exit_time": _moment(trade.exit_us),
        "quantity": trade.quantity,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "fees_usd": trade.fees_usd,
        "pnl_usd": trade.pnl_usd,
    }


def runs_reconcile(
    *, bot: Bot, live_run_id: int, backtest_run_id: int, tolerance: timedelta
) -> dict[str, Any]:
    """The live run's closed trades against the backtest run's: matched pairs with their
    slippage and differences, the trades only in one of them, and the P&L difference as the
    sum of its parts. ReconcileRefused names a run that is not the bot's."""
    live_run = _run(bot, live_run_id, "live_run")
    backtest_run = _run(bot, backtest_run_id, "backtest_run")
    live = _trades(bot, live_run.pk)
    backtest = _trades(bot, backtest_run.pk)
    pairs = _matches(live, backtest, tolerance)
    matched_live = {p[0].id for p in pairs}
    matched_bt = {p[1].id for p in pairs}
    live_only = [t for t in live if t.id not in matched_live]
    bt_only = [t for t in backtest if t.id not in matched_bt]

    totals = dict.fromkeys(_PARTS, Decimal(0))
    matched = []
    for trade, other in pairs:
        parts = _pair_parts(trade, other)
        for name in _PARTS:
            totals[name] += parts[name]
        sign = 1 if trade.side == "long" else -1
        matched.append(
            {
                "live": _trade_json(trade),
                "backtest": _trade_json(other),
                "entry_gap_s": (trade.entry_us - other.entry_us) / 1_000_000,
                "entry_slippage_pct": _slippage_pct(trade.entry_price, other.entry_price, sign),
                "exit_slippage_pct": _slippage_pct(trade.exit_price, other.exit_price, -sign),
                "fee_difference_usd": _usd(trade.fees_usd - other.fees_usd),
                "pnl_difference_usd": _usd(trade.pnl_usd - other.pnl_usd),
                "parts_usd": _parts_usd(parts, trade.pnl_usd - other.pnl_usd),
            }
        )
    live_pnl = sum((t.pnl_usd for t in live), Decimal(0))
    bt_pnl = sum((t.pnl_usd for t in backtest), Decimal(0))
    matched_diff = sum(totals.values(), Decimal(0))
    live_only_pnl = sum((t.pnl_usd for t in live_only), Decimal(0))
    bt_only_pnl = sum((t.pnl_usd for t in bt_only), Decimal(0))
    explained = matched_diff + live_only_pnl - bt_only_pnl
    assert explained == live_pnl - bt_pnl  # noqa: S101 - an identity of exact sums
    return {
        "bot_id": bot.bot_id,
        "live_run": live_run.pk,
        "backtest_run": backtest_run.pk,
        "tolerance_s": tolerance.total_seconds(),
        "live_trades": len(live),
        "backtest_trades": len(backtest),
        "matched": matched,
        "live_only": [_trade_json(t) for t in live_only],
        "backtest_only": [_trade_json(t) for t in bt_only],
        "pnl": {
            "live_usd": _usd(live_pnl),
            "backtest_usd": _usd(bt_pnl),
            "difference_usd": _usd(live_pnl - bt_pnl),
            "matched_usd": _usd(matched_diff),
            "matched_parts_usd": _parts_usd(totals, matched_diff),
            "live_only_usd": _usd(live_only_pnl),
            "backtest_only_usd": _usd(-bt_only_pnl),
        },
    }
