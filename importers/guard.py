"""What keeps an import from disturbing a bot that is trading: one source per bot unless
``--merge``, and open positions of a source that went quiet imported closed.

Another source: a bot that already holds trades this import does not write (a live bot's own
trades, the demo's, another legacy source's) gets the import only with ``--merge``. Without it
the import runs to the end, is rolled back, and the refusal carries its report: what it would
have added, per table. A second run of the same import finds only its own trades: no refusal.

Stale: a source whose last activity (its latest time of any kind: a trade's entry or exit, a
position's update, a balance, a signal) is older than ``--stale-after`` (default 7 days) has
no live positions. Its open positions are imported closed, at the source's last activity,
with quantity 0 and ``metadata.stale`` saying what was open (``closed_unknown``: how they ended
is not known). Closed positions count nowhere as exposure: not in the portfolio summary, not
in the risk-limit check, not in VaR. Open trades stay open (their exit is unknown, and a closed
trade needs one); they are no position and no exposure either.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection

from importers.core import SourceError, utc_parse
from trading.models import PositionStatus

if TYPE_CHECKING:
    from importers.core import ImportContext, Report

STALE_AFTER_DEFAULT = "7d"
_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)


class MergeRefused(SourceError):
    """The bot holds trades of another source and ``--merge`` was not given: nothing written."""

    def __init__(self, report: Report, foreign: int) -> None:
        self.report = report
        self.foreign = foreign
        super().__init__(
            f"bot {report.bot_id} already holds {foreign:,} trades from another source; "
            "nothing written. Give --merge to add this source to it, or import into a bot of "
            "its own (--bot-id). What it would add:\n" + report.render().rstrip("\n")
        )


def stale_after_argument(text: str) -> timedelta | None:
    """An argparse type: ``7d``, ``36h``; ``never`` (None) keeps open positions open."""
    if text.strip().lower() == "never":
        return None
    found = _DURATION.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 36h or never")
    amount, unit = int(found.group(1)), found.group(2).lower()
    return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)


def guard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--merge",
        action="store_true",
        help="Import into a bot that already holds trades from another source (refused "
        "without it, with what the import would add).",
    )
    parser.add_argument(
        "--stale-after",
        type=stale_after_argument,
        default=stale_after_argument(STALE_AFTER_DEFAULT),
        help="A source whose last activity is older than this (7d, 36h; never) has its open "
        f"positions imported closed, never as live exposure (default {STALE_AFTER_DEFAULT}).",
    )


def merge_check(ctx: ImportContext, *, merge: bool) -> None:
    """Raise MergeRefused when the import writes into a bot holding trades of another source
    (called at the end of the import, in its transaction: the refusal rolls it all back)."""
    if merge or ctx.report.nothing_to_do:
        return
    foreign = foreign_trades(bot_id=ctx.bot.bot_id, own_keys=ctx.trade_keys)
    if foreign:
        ctx.report.dry_run = True  # what it would have added: it is all rolled back
        raise MergeRefused(ctx.report, foreign)


def last_activity(values: Iterable[object]) -> datetime | None:
    """The latest of the times in ``values`` (legacy text, datetimes; unreadable ones are left
    to the mapping, which names them)."""
    latest: datetime | None = None
    for value in values:
        try:
            moment = utc_parse(value)
        except ValueError:
            continue
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def stale_since(
    activity: datetime | None, *, stale_after: timedelta | None, now: datetime | None = None
) -> datetime | None:
    """The source's last activity when it is older than ``stale_after``; else None."""
    if activity is None or stale_after is None:
        return None
    now = now or datetime.now(tz=UTC)
    return activity if now - activity > stale_after else None


def foreign_trades(*, bot_id: str, own_keys: set[str]) -> int:
    """How many of the bot's trades this import did not write (nor would)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM trading.trades WHERE bot_id = %s AND NOT (trade_id = ANY(%s))",
            [bot_id, sorted(own_keys)],
        )
        (count,) = cursor.fetchone()
    return int(count)


def positions_closed_unknown(
    ctx: ImportContext, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``rows`` with every open position closed at the source's last activity (``ctx.stale``),
    when the source is stale; as they are otherwise. A stale position whose key holds an open
    position of the bot opened at another time (another source's, with ``--merge``) is left
    out with a warning: closing it would close that one."""
    since = ctx.stale
    if since is None:
        return rows
    open_now = _open_positions(ctx.bot.bot_id)
    kept = []
    for row in rows:
        if row["status"] == PositionStatus.CLOSED:
            kept.append(row)
            continue
        key = (row["symbol"], row["exchange"], row["side"])
        other = open_now.get(key)
        if other is not None and other != row["opened_at"]:
            ctx.report.warn(
                "positions",
                "/".join(key),
                f"stale (the source's last activity {since.isoformat()}), and the bot holds an "
                f"open position on it opened at {other.isoformat()}: not imported",
            )
            continue
        stale = {
            "closed_unknown": True,
            "last_activity": since.isoformat(),
            "open_quantity": str(row["quantity"]),
            "unrealized_pnl_usd": str(row["unrealized_pnl_usd"]),
        }
        kept.append(
            {
                **row,
                "status": PositionStatus.CLOSED,
                "quantity": Decimal(0),
                "unrealized_pnl_usd": Decimal(0),
                "closed_at": max(since, row["opened_at"]),
                "metadata": {**row["metadata"], "stale": stale},
            }
        )
    closed = sum(1 for row in kept if "stale" in row["metadata"])
    if closed:
        ctx.report.warn(
            "positions",
            "stale",
            f"{closed} open position(s) of a source quiet since {since.isoformat()} imported "
            "closed (closed_unknown): not live exposure",
        )
    return kept


def _open_positions(bot_id: str) -> dict[tuple[str, str, str], datetime]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT symbol, exchange, side, opened_at FROM trading.positions "
            "WHERE bot_id = %s AND NOT (status = 'closed')",
            [bot_id],
        )
        return {(s, e, d): at for s, e, d, at in cursor.fetchall()}
