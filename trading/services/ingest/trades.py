"""Trades: upserted by (bot, trade_id) in one statement; pnl derived where the bot left it."""

from contextlib import nullcontext
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction

from atb_site.db.base import prepared_cursor
from trading.models import Bot, TradeSide, TradeStatus
from trading.services.ingest.backlog import TRADE_WRITTEN, may_make_stale, with_backlog_mark
from trading.services.ingest.common import (
    OPEN_RUN_SQL,
    PCT_PLACES,
    USD_PLACES,
    UpsertCounts,
    array_literal,
    key_order_sql,
    run_id_sql,
    run_ids_check,
    upsert_counts,
    values_check,
)
from trading.services.market import COPY_ESCAPES

# Columns a bot sends for a trade, in the order of the statement below.
TRADE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trade_id", "text"),
    ("symbol", "text"),
    ("exchange", "text"),
    ("side", "text"),
    ("quantity", "numeric"),
    ("entry_price", "numeric"),
    ("exit_price", "numeric"),
    ("entry_time", "timestamptz"),
    ("exit_time", "timestamptz"),
    ("fees_usd", "numeric"),
    ("pnl_usd", "numeric"),
    ("pnl_pct", "numeric"),
    ("status", "text"),
    ("source", "text"),
    ("leverage", "numeric"),
    ("exit_reason", "text"),
    ("entry_tag", "text"),
    ("strategy_data", "jsonb"),
)
_NAMES = [name for name, _ in TRADE_COLUMNS]
_MUTABLE = [name for name in _NAMES if name != "trade_id"]

# The generic path's rows also carry the run a trade names (run_id, NULL for most); the
# staging table of the fast path does not (a trade naming its run takes the generic path).
_UNNEST = (
    f"unnest({', '.join(f'%({n})s::{t}[]' for n, t in TRADE_COLUMNS)}, %(run_id)s::bigint[])\n"
    f"    AS u({', '.join(_NAMES)}, run_id)"
)
# {rows}: where the batch comes from, as u; {run}: a row's run; {returning}: what each row
# written returns. A trade's run is the one it was first written in (or named): a later write,
# say its close, does not move it.
_UPSERT_SQL = f"""
INSERT INTO trading.trades (bot_id, run_id, {", ".join(_NAMES)}, created_at, updated_at)
SELECT %(bot_id)s, {{run}}, {", ".join(f"u.{n}" for n in _NAMES)}, now(), now()
FROM {{rows}}
{key_order_sql(TRADE_COLUMNS, ("trade_id",))}
ON CONFLICT (bot_id, trade_id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in _MUTABLE)}, updated_at = now()
WHERE ({", ".join(f"trades.{n}" for n in _MUTABLE)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{n}" for n in _MUTABLE)})
RETURNING {{returning}}
"""  # noqa: S608 - identifiers are the constants above; values are parameters
_ROW_RUN = run_id_sql("u.run_id")
TRADE_UPSERT_SQL = _UPSERT_SQL.format(rows=_UNNEST, run=_ROW_RUN, returning="(xmax = 0) AS created")
# The same, marking the bot's risk_metrics days that trades for past days make stale
# (trading.services.ingest.backlog): for batches where that can happen.
TRADE_UPSERT_MARKING_SQL = with_backlog_mark(
    _UPSERT_SQL.format(rows=_UNNEST, run=_ROW_RUN, returning=TRADE_WRITTEN)
)

# The same upserts from a staging table the batch was COPied into (trade_upsert_copied).
_STAGING = "trade_staging"
TRADE_STAGING_SQL = (
    f"CREATE TEMPORARY TABLE {_STAGING} ("
    + ", ".join(f"{n} {t}" for n, t in TRADE_COLUMNS)
    + ") ON COMMIT DROP"
)
TRADE_COPY_SQL = f"COPY {_STAGING} ({', '.join(_NAMES)}) FROM STDIN"
TRADE_STAGED_UPSERT_SQL = _UPSERT_SQL.format(
    rows=f"{_STAGING} AS u", run=OPEN_RUN_SQL, returning="(xmax = 0) AS created"
)
TRADE_STAGED_UPSERT_MARKING_SQL = with_backlog_mark(
    _UPSERT_SQL.format(rows=f"{_STAGING} AS u", run=OPEN_RUN_SQL, returning=TRADE_WRITTEN)
)


def trade_derived_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The figures the server computes: pnl of a closed trade the bot did not price, pnl_pct.

    pnl_usd (net of fees) = (exit - entry) x quantity - fees for a long, (entry - exit) x
    quantity - fees for a short. pnl_pct = pnl_usd / (quantity x entry_price) x 100.
    """
    if row["status"] == TradeStatus.CLOSED and row.get("pnl_usd") is None:
        move = row["exit_price"] - row["entry_price"]
        if row["side"] == TradeSide.SHORT:
            move = -move
        row["pnl_usd"] = (move * row["quantity"] - row["fees_usd"]).quantize(USD_PLACES)
    if row.get("pnl_usd") is not None:
        notional = row["quantity"] * row["entry_price"]
        row["pnl_pct"] = (row["pnl_usd"] / notional * 100).quantize(PCT_PLACES)
    else:
        row["pnl_pct"] = None
    return row


def trade_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new trades and update changed ones, keyed by (bot, trade_id), in one statement.
    A new trade is linked to the run its row names (``run_id``, checked to be the bot's) or
    else to the bot's open run, if any.

    A trade sent again with the same content is left alone (``unchanged``). A batch with a
    trade entered before today also marks the risk_metrics days it makes stale. RowsRefused,
    nothing written, names a trade whose quantity x entry_price a USD column cannot hold.
    """
    if not rows:
        return UpsertCounts(0, 0, 0)
    values_check(rows, ("entry_price",), "trade")
    run_ids = [r.get("run_id") for r in rows]
    run_ids_check(bot=bot, run_ids=run_ids)
    params: dict[str, Any] = {"bot_id": bot.bot_id, "run_id": array_literal("bigint", run_ids)}
    for name, kind in TRADE_COLUMNS:
        params[name] = array_literal(kind, [r[name] for r in rows])
    # Alone, one statement is atomic by itself: BEGIN and COMMIT would only add round trips.
    # Prepared (after a few runs on a connection): planning it cost about what running it does.
    # In a caller's transaction, a savepoint keeps a refusal from aborting the caller's work.
    in_transaction = connection.in_atomic_block
    with transaction.atomic() if in_transaction else nullcontext(), prepared_cursor() as cursor:
        cursor.execute(
            TRADE_UPSERT_MARKING_SQL if may_make_stale(rows) else TRADE_UPSERT_SQL, params
        )
        flags = [created for (created,) in cursor.fetchall()]
    created = sum(flags)
    updated = len(flags) - created
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - len(flags))


# Whether any of a batch's trade_ids is the bot's already, the transaction's now() for the
# created_at and updated_at the upsert would write, and the bot's open run (NULL: none), which
# the upsert would link.
_TAKEN_SQL = f"""
SELECT now(),
    EXISTS (
        SELECT FROM trading.trades WHERE bot_id = %(bot_id)s AND trade_id = ANY(%(ids)s::text[])
    ),
    {OPEN_RUN_SQL}
"""  # noqa: S608 - constant text
TRADE_DIRECT_COPY_SQL = (
    f"COPY trading.trades (bot_id, run_id, {', '.join(_NAMES)}, created_at, updated_at) FROM STDIN"
)


def _copied_if_new(*, bot: Bot, copy_text: str) -> bool:
    """COPY the batch (``copy_text``: lines in TRADE_COLUMNS' order) straight into trades if
    none of its trade_ids is the bot's yet, linked to the bot's open run as the upsert links
    them; whether it was (False: nothing written). The lines
    go in trade_id order, the order every writer of trades keeps (key_order_sql). A trade_id
    another session wrote meanwhile makes the COPY fail on the unique key: nothing is written
    and False is returned, for the upsert to judge. Other refusals are raised."""
    lines = copy_text.split("\n")[:-1]
    lines.sort()  # by trade_id: the first field, and a tab sorts before any character of one
    ids = [line[: line.index("\t")] for line in lines]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_TAKEN_SQL, {"bot_id": bot.bot_id, "ids": array_literal("text", ids)})
            now, taken, run_id = cursor.fetchone()
            if taken:
                return False
            stamp = now.isoformat()
            run = "\\N" if run_id is None else str(run_id)
            head = f"{bot.bot_id.translate(COPY_ESCAPES)}\t{run}\t"
            tail = f"\t{stamp}\t{stamp}\n"
            text = "".join([head + line + tail for line in lines])
            with connection.wrap_database_errors, cursor.cursor.copy(TRADE_DIRECT_COPY_SQL) as copy:
                copy.write(text.encode())
    except IntegrityError as exc:
        if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
            return False
        raise
    return True


def trade_upsert_copied(
    *, bot: Bot, copy_text: str, sent: int, may_make_stale: bool
) -> UpsertCounts:
    """``trade_upsert_many`` for ``sent`` trades already written as COPY text, in
    TRADE_COLUMNS' order, derived fields and source filled in (trading.api.trades_fast): COPied
    into a staging table, then upserted from it by the same statement, in the same key order.

    A batch of trades all new to the bot (and that cannot mark the backlog) is COPied straight
    into trades instead (``_copied_if_new``): the staging table, the upsert from it and its drop
    cost about a third of the database's time for 1,000 trades.

    Nothing is written when PostgreSQL refuses a row (a DataError or IntegrityError is raised,
    the transaction, or the caller's savepoint, undone). ``may_make_stale``: whether the batch
    holds a trade entered before today (backlog.may_make_stale), whose write marks the backlog.
    """
    if not may_make_stale and _copied_if_new(bot=bot, copy_text=copy_text):
        return UpsertCounts(created=sent, updated=0, unchanged=0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(TRADE_STAGING_SQL)
        with connection.wrap_database_errors, cursor.cursor.copy(TRADE_COPY_SQL) as copy:
            copy.write(copy_text.encode())
        cursor.execute(
            TRADE_STAGED_UPSERT_MARKING_SQL if may_make_stale else TRADE_STAGED_UPSERT_SQL,
            {"bot_id": bot.bot_id},
        )
        flags = [created for (created,) in cursor.fetchall()]
        # Dropped at once (not only at commit), so that a second batch in one transaction works.
        cursor.execute(f"DROP TABLE {_STAGING}")
    return upsert_counts(flags, sent)


# One trade for a bot's token, in one statement (trade_upsert_for_token): the token's check, its
# last use noted (at most once a minute, as token_authenticate notes it) and the upsert. The
# trade's values are one row of text parameters, cast as the batch's arrays are.
_TOKEN_ROW = f"""
SELECT {", ".join(f"%({n})s::{t} AS {n}" for n, t in TRADE_COLUMNS if n != "source")},
    COALESCE(%(source)s::text, b.mode) AS source
FROM token JOIN trading.bots AS b ON b.bot_id = %(bot_id)s::text
"""  # noqa: S608 - identifiers are the constants above; values are parameters
TRADE_UPSERT_FOR_TOKEN_SQL = f"""
WITH token AS (
    SELECT t.id, t.last_used_at FROM trading.api_tokens AS t
    WHERE t.key_hash = %(key_hash)s::text AND t.revoked_at IS NULL AND t.bot_id = %(bot_id)s::text
),
noted AS (
    UPDATE trading.api_tokens AS a SET last_used_at = now() FROM token
    WHERE a.id = token.id
        AND (token.last_used_at IS NULL OR token.last_used_at <= now() - interval '1 minute')
),
written AS ({
    _UPSERT_SQL.format(
        rows=f"({_TOKEN_ROW}) AS u", run=OPEN_RUN_SQL, returning="(xmax = 0) AS created"
    )
})
SELECT (SELECT created FROM written) FROM token
"""  # noqa: S608 - constant text around constant statements


def trade_upsert_for_token(
    *, key_hash: str, bot_id: str, values: dict[str, str | None]
) -> UpsertCounts | None:
    """Upsert one trade of ``bot_id`` (``values``: TRADE_COLUMNS' texts, a NULL as None, a None
    source for the bot's mode) if ``key_hash`` is a live token of that bot; None, nothing
    written, if it is not. One round trip: the token's check, its last use and the upsert are
    one statement, so a token revoked a moment ago writes nothing.

    The caller checks ``values`` as trade_upsert_many's callers do, and sends here only a trade
    entered today (one that cannot mark the risk_metrics backlog). A DataError or
    IntegrityError (a CHECK, an input function) is raised with nothing written."""
    params: dict[str, Any] = {**values, "key_hash": key_hash, "bot_id": bot_id}
    in_transaction = connection.in_atomic_block
    with transaction.atomic() if in_transaction else nullcontext(), prepared_cursor() as cursor:
        cursor.execute(TRADE_UPSERT_FOR_TOKEN_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return upsert_counts([] if row[0] is None else [row[0]], 1)
