"""Reading a freqtrade database in place: a SQLite file or a PostgreSQL URL, never written.

Freqtrade writes the same tables through SQLAlchemy on either engine (FREQTRADE.md). Rows come
back as plain dicts keyed by column name, in the engine's own types: SQLite gives DATETIME as
naive UTC text and BOOLEAN as 0/1, PostgreSQL gives naive datetimes and bools. ``utc`` and
``flag`` read both spellings, so the mapping does not care where a row came from.
"""

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from importers.core import SourceError, sqlite_read_only

Row = dict[str, Any]

# Without these a database is not freqtrade's; the other tables are optional (older versions
# lack some of them, and they only add context).
REQUIRED_COLUMNS = {
    "trades": {"id", "exchange", "pair", "is_open", "open_rate", "amount", "open_date"},
    "orders": {"id", "ft_trade_id", "ft_order_side", "ft_pair", "order_id"},
}
OPTIONAL_TABLES = ("pairlocks", "KeyValueStore", "trade_custom_data", "wallet_history")


@dataclass
class FreqtradeDatabase:
    """Everything read from one freqtrade database, trades in id order."""

    location: str  # the path, or the URL without its password
    trades: list[Row]
    orders: dict[int, list[Row]]  # ft_trade_id -> its orders, in id order
    custom_data: dict[int, list[Row]]  # ft_trade_id -> its trade_custom_data rows
    pairlocks: list[Row] = field(default_factory=list)
    key_values: list[Row] = field(default_factory=list)
    wallet_history: list[Row] = field(default_factory=list)

    @property
    def order_count(self) -> int:
        return sum(len(orders) for orders in self.orders.values())


def read_database(source: str) -> FreqtradeDatabase:
    """Read the freqtrade database at ``source``: a SQLite path (or ``sqlite:///path``) or a
    PostgreSQL URL (``postgresql://``, also SQLAlchemy's ``postgresql+psycopg://``)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme.startswith(("postgres", "postgresql")):
        url, location = _postgres_url(source)
        with _postgres(url) as (query, tables):
            return _read(query, tables, location)
    path = source.removeprefix("sqlite:///") if scheme == "sqlite" else source
    with _sqlite(path) as (query, tables):
        return _read(query, tables, path)


Query = Callable[[str], list[Row]]


def _read(query: Query, tables: dict[str, set[str]], location: str) -> FreqtradeDatabase:
    for table, needed in REQUIRED_COLUMNS.items():
        if table not in tables:
            raise SourceError(f"{location} is not a freqtrade database: it has no {table} table")
        missing = needed - tables[table]
        if missing:
            raise SourceError(
                f"{location}: table {table} lacks the column(s) {', '.join(sorted(missing))}"
            )
    trades = query("SELECT * FROM trades ORDER BY id")
    orders: dict[int, list[Row]] = defaultdict(list)
    for order in query("SELECT * FROM orders ORDER BY ft_trade_id, id"):
        orders[order["ft_trade_id"]].append(order)
    custom: dict[int, list[Row]] = defaultdict(list)
    if "trade_custom_data" in tables:
        for row in query("SELECT * FROM trade_custom_data ORDER BY ft_trade_id, id"):
            custom[row["ft_trade_id"]].append(row)

    def optional(table: str) -> list[Row]:
        return query(f'SELECT * FROM "{table}" ORDER BY id') if table in tables else []  # noqa: S608

    return FreqtradeDatabase(
        location=location,
        trades=trades,
        orders=dict(orders),
        custom_data=dict(custom),
        pairlocks=optional("pairlocks"),
        key_values=optional("KeyValueStore"),
        wallet_history=optional("wallet_history"),
    )


@contextmanager
def _sqlite(path: str) -> Iterator[tuple[Query, dict[str, set[str]]]]:
    if not Path(path).is_file():
        raise SourceError(f"{path}: no such file")
    with sqlite_read_only(path) as conn:

        def query(sql: str) -> list[Row]:
            cursor = conn.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

        try:
            names = [r["name"] for r in query("SELECT name FROM sqlite_master WHERE type='table'")]
            tables = {
                name: {c["name"] for c in query(f'PRAGMA table_info("{name}")')}
                for name in names
                if name in REQUIRED_COLUMNS or name in OPTIONAL_TABLES
            }
            yield query, tables
        except sqlite3.Error as exc:
            raise SourceError(f"{path}: cannot read it as SQLite ({exc})") from exc


def _postgres_url(source: str) -> tuple[str, str]:
    """The URL psycopg understands (no SQLAlchemy ``+driver``), and one safe to print."""
    parts = urlsplit(source)
    scheme = parts.scheme.split("+", 1)[0]
    url = urlunsplit(parts._replace(scheme=scheme))
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return url, urlunsplit(parts._replace(scheme=scheme, netloc=netloc))


@contextmanager
def _postgres(url: str) -> Iterator[tuple[Query, dict[str, set[str]]]]:
    import psycopg
    from psycopg.rows import dict_row

    location = _postgres_url(url)[1]
    try:
        conn = psycopg.connect(url, row_factory=dict_row)
    except psycopg.Error as exc:
        raise SourceError(f"{location}: cannot connect ({exc})") from exc
    try:
        conn.read_only = True  # every statement runs in a READ ONLY transaction

        def query(sql: str) -> list[Row]:
            with conn.cursor() as cursor:
                cursor.execute(sql.encode())
                return list(cursor.fetchall())

        try:
            columns = query(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
            tables: dict[str, set[str]] = defaultdict(set)
            for row in columns:
                tables[row["table_name"]].add(row["column_name"])
            yield query, dict(tables)
        except psycopg.Error as exc:
            raise SourceError(f"{location}: cannot read it ({exc})") from exc
    finally:
        conn.rollback()
        conn.close()


# --- values as either engine writes them ---------------------------------------------------


def utc(value: Any) -> datetime | None:
    """A freqtrade DATETIME (naive UTC: text from SQLite, datetime from PostgreSQL) as aware UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def flag(value: Any) -> bool:
    """A BOOLEAN: 0/1 from SQLite, bool from PostgreSQL."""
    return bool(value) if value is not None else False
