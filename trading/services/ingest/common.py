"""What every set-based write shares: counts, array parameters, refusals, SQL builders."""

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from trading.models import Bot, BotRun

USD_PLACES = Decimal("1e-8")
PCT_PLACES = Decimal("1e-6")


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int

    def as_json(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def array_literal(kind: str, values: list[Any]) -> str:
    """``values`` as one PostgreSQL array literal, ``{...}``, for a ``%s::<kind>[]`` parameter.

    The server parses one text per column much faster than psycopg adapts a list element by
    element (a third of a 1,000-trade batch's time went there). Numbers are written exactly
    (``str`` of a Decimal); every other value is quoted: text as it is, timestamps in ISO 8601,
    JSON as ``json.dumps`` writes it (``jsonb_text`` when a Decimal is inside).
    """
    if kind == "numeric":
        if None not in values:  # the usual column: one join in C
            return "{" + ",".join(map(str, values)) + "}"
        return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
    if kind == "jsonb":
        values = [None if v is None else json_text(v) for v in values]
    elif kind == "timestamptz":
        values = [None if v is None else v.isoformat() for v in values]
    elif kind != "text" or not all(type(v) is str for v in values if v is not None):
        values = [None if v is None else str(v) for v in values]
    if None not in values:
        # Nearly every text column holds no quote or backslash: then its items are quoted by
        # one join (the separators hold the only quotes), and only a column with either pays
        # for escaping item by item.
        joined = '","'.join(values)
        if joined.count('"') == 2 * len(values) - 2 and "\\" not in joined:
            return '{"' + joined + '"}'
    items = [
        "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values
    ]
    return "{" + ",".join(items) + "}"


def json_text(value: Any) -> str:
    """JSON text for a JSONB column, a Decimal written as its own text (``str``): by msgspec,
    in C, ten times jsonb_text's speed; what it cannot write (a NaN, an integer beyond 64
    bits, a type it does not know) is left to jsonb_text, whose refusals are the ones raised."""
    try:
        return _JSON_ENCODER.encode(value).decode()
    except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        return jsonb_text(value)


_JSON_ENCODER = msgspec.json.Encoder(decimal_format="number")


# --- Orders, fills, positions, signals, balances ---------------------------------------------
#
# The same recipe as trades: rows arrive cleaned, one set-based statement writes a batch, and
# the counts come from RETURNING. What only the stored data can refuse (an unknown trade_id, an
# overfill) is checked first, inside the same transaction, and raised as RowsRefused: nothing
# of the batch is written.

Column = tuple[str, str]  # (name, PostgreSQL type)


class RowsRefused(Exception):
    """Rows the stored data refuses; nothing was written. ``errors``: (index, field, reason)."""

    def __init__(self, errors: list[tuple[int, str | None, str]]) -> None:
        super().__init__(f"{len(errors)} rows refused")
        self.errors = errors


@dataclass(frozen=True)
class NumericBound:
    """What a NUMERIC(max_digits, places) column holds."""

    digits: int  # before the point
    quantum: Decimal
    safe: Decimal  # any value of smaller magnitude fits, however it rounds

    @classmethod
    def of(cls, max_digits: int, places: int) -> "NumericBound":
        digits = max_digits - places
        quantum = Decimal(1).scaleb(-places)
        return cls(digits, quantum, Decimal(10) ** digits - quantum)

    def overflows(self, value: Decimal) -> bool:
        """Whether ``value``, rounded to the column's scale, has more digits than it holds."""
        if -self.safe < value < self.safe:  # nearly always: one comparison
            return False
        try:
            rounded = value.quantize(self.quantum)
        except InvalidOperation:  # more digits than Decimal's 28: far beyond any column
            return True
        return rounded.adjusted() >= self.digits


USD_BOUND = NumericBound.of(20, 8)


def value_problem(row: dict[str, Any], prices: tuple[str, ...], what: str) -> str | None:
    """Why quantity x one of ``prices`` (those not null) cannot be a row's value, or None.

    Analytics sums these values (exposure in the snapshots, the risk_metrics rows and the risk
    check); one too large would make every run of those fail for the whole fleet. Held to what
    a USD column holds, every sum fits the NUMERIC(38, 8) columns that keep them. One
    multiplication and one comparison per price: cheap on the hot path."""
    quantity = row["quantity"]
    for name in prices:
        price = row.get(name)
        if price is not None and USD_BOUND.overflows(value := quantity * price):
            return (
                f"quantity x {name} = {value.normalize():f} USD, more than the "
                f"{USD_BOUND.safe} USD a {what}'s value may be (the USD columns hold "
                f"{USD_BOUND.digits} digits before the point)"
            )
    return None


def values_check(rows: list[dict[str, Any]], prices: tuple[str, ...], what: str) -> None:
    """RowsRefused on ``quantity`` of every row whose value_problem is not None."""
    errors: list[tuple[int, str | None, str]] = [
        (index, "quantity", problem)
        for index, row in enumerate(rows)
        if (problem := value_problem(row, prices, what)) is not None
    ]
    if errors:
        raise RowsRefused(errors)


class OrderNotFound(LookupError):
    """The bot has no order with this client_order_id (another bot's orders do not exist)."""


def jsonb_text(value: Any) -> str:
    """JSON text for a JSONB column, numbers written exactly as sent.

    The API's parser reads JSON numbers with a fraction as Decimal, which ``json.dumps`` refuses
    and a float would round; PostgreSQL reads the text back as the same numeric.
    """
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is Decimal:
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)
    if kind is dict:
        members = [f"{_json_string(str(k))}:{jsonb_text(v)}" for k, v in value.items()]
        return "{" + ",".join(members) + "}"
    if kind is list or kind is tuple:
        return "[" + ",".join([jsonb_text(v) for v in value]) + "]"
    return json.dumps(value, allow_nan=False)  # int, bool, None (and float, if ever)


_json_string = json.encoder.encode_basestring  # C; keeps non-ASCII, escapes the rest


def unnest_sql(columns: tuple[Column, ...]) -> str:
    """``unnest(%(a)s::t[], ...) AS u(a, ...)``: one array parameter per column."""
    arrays = ", ".join(f"%({name})s::{kind}[]" for name, kind in columns)
    return f"unnest({arrays}) AS u({', '.join(name for name, _ in columns)})"


def array_params(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> dict[str, Any]:
    """One array parameter per column (``array_literal``, as for trades)."""
    return {name: array_literal(kind, [r[name] for r in rows]) for name, kind in columns}


def column_list(
    columns: tuple[Column, ...], *, prefix: str = "", skip: tuple[str, ...] = ()
) -> str:
    return ", ".join(f"{prefix}{name}" for name, _ in columns if name not in skip)


def assignments_sql(columns: tuple[Column, ...], source: str, skip: tuple[str, ...]) -> str:
    return ", ".join(f"{n} = {source}.{n}" for n, _ in columns if n not in skip)


def changed_sql(columns: tuple[Column, ...], old: str, new: str, skip: tuple[str, ...]) -> str:
    """``(old.a, ...) IS DISTINCT FROM (new.a, ...)`` over the columns not skipped."""
    return (
        f"({column_list(columns, prefix=f'{old}.', skip=skip)}) "
        f"IS DISTINCT FROM ({column_list(columns, prefix=f'{new}.', skip=skip)})"
    )


def key_order_sql(columns: tuple[Column, ...], key: tuple[str, ...], *, prefix: str = "u.") -> str:
    """``ORDER BY`` the ``key`` columns, text compared byte by byte (``COLLATE "C"``: cheap, and
    the same in every session). Every writer of a table inserts and locks its rows in this one
    order, so two batches over the same keys wait for each other instead of each holding a key
    the other wants next (a deadlock)."""
    kinds = dict(columns)
    return "ORDER BY " + ", ".join(
        f'{prefix}{name} COLLATE "C"' if kinds[name] == "text" else f"{prefix}{name}"
        for name in key
    )


def upsert_counts(flags: list[bool], sent: int) -> UpsertCounts:
    created = sum(flags)
    return UpsertCounts(created=created, updated=len(flags) - created, unchanged=sent - len(flags))


def lock_bot_table(cursor: Any, *, table: str, bot: Bot) -> None:
    """Serialise one bot's writes to a table whose natural key no unique constraint backs."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{table}:{bot.pk}"])


def trade_refs_resolve(cursor: Any, *, bot: Bot, refs: list[str | None]) -> list[int | None]:
    """The ids of the bot's trades named by their trade_id; RowsRefused names unknown ones."""
    wanted = sorted({ref for ref in refs if ref is not None})
    found: dict[str, int] = {}
    if wanted:
        cursor.execute(
            "SELECT trade_id, id FROM trading.trades WHERE bot_id = %s AND trade_id = ANY(%s)",
            [bot.bot_id, wanted],
        )
        found = dict(cursor.fetchall())
    errors: list[tuple[int, str | None, str]] = [
        (index, "trade_id", f"{bot.bot_id} has no trade {ref!r}")
        for index, ref in enumerate(refs)
        if ref is not None and ref not in found
    ]
    if errors:
        raise RowsRefused(errors)
    return [None if ref is None else found[ref] for ref in refs]


def plain_decimal(number: Decimal) -> str:
    return f"{number.normalize():f}"


# --- Runs ---------------------------------------------------------------------------------------

# The id of the bot's open run, or NULL: one probe of the bot_runs_one_open partial unique
# index. Uncorrelated with the batch, PostgreSQL evaluates it once per statement (an InitPlan),
# however many rows the statement writes. The statement's parameters must hold %(bot_id)s.
# (varchar, as the statements' other uses of the parameter: a prepared statement gives it one
# type.)
OPEN_RUN_SQL = (
    "(SELECT r.id FROM trading.bot_runs AS r"
    " WHERE r.bot_id = %(bot_id)s::varchar AND r.ended_at IS NULL)"
)


def run_id_sql(explicit: str) -> str:
    """A row's run: the one it names (``explicit``, an SQL expression), else the open one."""
    return f"COALESCE({explicit}, {OPEN_RUN_SQL})"


# The run a row names, a column the batch carries beside its table's own (NULL for most rows).
RUN_COLUMN: Column = ("run_id", "bigint")


def run_params(*, bot: Bot, rows: list[dict[str, Any]]) -> dict[str, str]:
    """The run_id array parameter of a batch, each named run checked to be ``bot``'s."""
    run_ids = [r.get("run_id") for r in rows]
    run_ids_check(bot=bot, run_ids=run_ids)
    return {"run_id": array_literal("bigint", run_ids)}


def run_ids_check(*, bot: Bot, run_ids: list[int | None]) -> None:
    """RowsRefused, naming run_id, for every row that names a run not of ``bot``'s; one query,
    only when a row names one."""
    wanted = sorted({run_id for run_id in run_ids if run_id is not None})
    if not wanted:
        return
    found = set(
        BotRun.objects.filter(bot=bot, pk__in=wanted).values_list("pk", flat=True).order_by()
    )
    errors: list[tuple[int, str | None, str]] = [
        (index, "run_id", f"{bot.bot_id} has no run {run_id}")
        for index, run_id in enumerate(run_ids)
        if run_id is not None and run_id not in found
    ]
    if errors:
        raise RowsRefused(errors)
