"""What every analytics read shares: which trades count, and the figures SQL does badly.

METRICS.md is the definition of every figure. The selectors keep sums and money in NUMERIC /
``Decimal`` end to end; ratios (Sharpe, Sortino, CAGR, ...) are computed in floating point from
aggregates the database returns and rounded to ``RATIO_PLACES`` places.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from atb_site.db.replicas import read_connection
from trading.models import Bot

RATIO_PLACES = 6
USD = Decimal("0.00000001")
# Days a year for annualising daily figures: crypto trades every day (METRICS.md).
DAYS_A_YEAR = 365


def ratio(value: float | Decimal | None) -> float | None:
    """A ratio as the API writes it: a float rounded to 6 places; None stays None."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, RATIO_PLACES) + 0.0  # + 0.0 turns -0.0 into 0.0


def usd(value: Decimal | None) -> Decimal | None:
    """Money to the cent's millionth (NUMERIC(20, 8)), rounding half away from zero as SQL."""
    if value is None:
        return None
    return value.quantize(USD, rounding=ROUND_HALF_UP)


@dataclass
class TradeScope:
    """Which of a bot's trades a figure reads: closed (or open) ones, backtests or not, in a
    period of exit times [since, until). Renders a WHERE clause and its parameters."""

    bot_id: str
    since: datetime | None = None
    until: datetime | None = None
    include_backtest: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    # A slice of the bot's trades: those written in these runs (whatever their source), or
    # those entered in [entered_from, entered_to) (a configuration version's time in force).
    run_ids: tuple[int, ...] = ()
    entered_from: datetime | None = None
    entered_to: datetime | None = None

    def __post_init__(self) -> None:
        self.params.update(bot_id=self.bot_id, since=self.since, until=self.until)
        if self.run_ids:
            self.params["run_ids"] = list(self.run_ids)
        self.params.update(entered_from=self.entered_from, entered_to=self.entered_to)

    @property
    def sliced(self) -> bool:
        return bool(self.run_ids) or self.entered_from is not None

    def _source(self, alias: str) -> str:
        where = ""
        if self.run_ids:  # a run's trades are all its own, a backtest's included
            return f" AND {alias}.run_id = ANY(%(run_ids)s::bigint[])"
        if self.entered_from is not None:
            where += f" AND {alias}.entry_time >= %(entered_from)s"
        if self.entered_to is not None:
            where += f" AND {alias}.entry_time < %(entered_to)s"
        return where + ("" if self.include_backtest else f" AND {alias}.source <> 'backtest'")

    def closed(self, alias: str = "t") -> str:
        """The closed trades of the period (exit_time in [since, until))."""
        where = f"{alias}.bot_id = %(bot_id)s AND {alias}.status = 'closed'" + self._source(alias)
        if self.since is not None:
            where += f" AND {alias}.exit_time >= %(since)s"
        if self.until is not None:
            where += f" AND {alias}.exit_time < %(until)s"
        return where

    def closed_before(self, alias: str = "t") -> str:
        """The closed trades before the period: they make the equity the period starts from."""
        return (
            f"{alias}.bot_id = %(bot_id)s AND {alias}.status = 'closed'"
            + self._source(alias)
            + f" AND {alias}.exit_time < %(since)s"
        )

    def open_trades(self, alias: str = "t") -> str:
        return f"{alias}.bot_id = %(bot_id)s AND {alias}.status = 'open'" + self._source(alias)

    def start_equity_sql(self, initial_param: str = "initial") -> str:
        """E at the start of the period: initial capital, plus what closed before ``since``."""
        if self.since is None:
            return f"%({initial_param})s::numeric"
        return (
            f"(SELECT %({initial_param})s::numeric + COALESCE(sum(b.pnl_usd), 0) "  # noqa: S608
            f"FROM trading.trades b WHERE {self.closed_before('b')})"
        )


def bot_scope(
    *,
    bot: Bot,
    since: datetime | None,
    until: datetime | None,
    include_backtest: bool,
    run_ids: tuple[int, ...] = (),
    entered: tuple[datetime, datetime | None] | None = None,
) -> TradeScope:
    """The scope of a bot's figures, with its initial capital as the ``initial`` parameter."""
    scope = TradeScope(
        bot_id=bot.bot_id,
        since=since,
        until=until,
        include_backtest=include_backtest,
        run_ids=run_ids,
        entered_from=entered[0] if entered else None,
        entered_to=entered[1] if entered else None,
    )
    scope.params["initial"] = bot.initial_capital_usd
    return scope


def fetch_one(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """One row of one statement, as a dict by column name. A staff read's selectors read from a
    replica (atb_site/db/replicas.py); everything else, and a transaction's reads, the primary."""
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        names = [col.name for col in cursor.description]
        row = cursor.fetchone()
    assert row is not None  # noqa: S101 - every statement here answers one row
    return dict(zip(names, row, strict=True))


def fetch_all(sql: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        names = [col.name for col in cursor.description]
        rows = cursor.fetchall()
    for row in rows:
        yield dict(zip(names, row, strict=True))


# --- The figures of the daily return series (METRICS.md "Curve statistics") -------------------


def sharpe(*, days: int, mean: float | None, stdev: float | None) -> float | None:
    """mean / sample stdev x sqrt(365); None under 2 days or without deviation."""
    if days < 2 or mean is None or not stdev:
        return None
    return mean / stdev * math.sqrt(DAYS_A_YEAR)


def sortino(*, days: int, mean: float | None, downside_sq_mean: float | None) -> float | None:
    """mean / sqrt(mean(min(r, 0)^2)) x sqrt(365), as empyrical; None under 2 days or without a
    losing day (empyrical answers inf there)."""
    if days < 2 or mean is None or not downside_sq_mean:
        return None
    return mean / math.sqrt(downside_sq_mean) * math.sqrt(DAYS_A_YEAR)


def cagr(*, start: Decimal, end: Decimal, days: float | None) -> float | None:
    """(E_end / E_start) ^ (365 / D) - 1, D at least 1 day; -1 when the equity is all gone."""
    if days is None or start <= 0:
        return None
    if end <= 0:
        return -1.0
    try:
        return float(end / start) ** (DAYS_A_YEAR / max(days, 1.0)) - 1.0
    except OverflowError:  # an absurd growth over a short D
        return None


def calmar(*, cagr_value: float | None, max_drawdown_pct: Decimal | None) -> float | None:
    if cagr_value is None or not max_drawdown_pct:
        return None
    return cagr_value / (float(max_drawdown_pct) / 100)
