"""dataset_load: the data set into the configured database, in one transaction, by binary COPY.

The tables are emptied (TRUNCATE ... CASCADE) and filled in the same transaction, which lets
COPY write frozen, all-visible rows (``FREEZE``): the first reads after the load neither set hint
bits nor miss the visibility map, so the bench measures a settled table (the candles, routed to
their monthly partitions, cannot be frozen by COPY: a VACUUM after the commit does it).
Secondary indexes, unique and foreign-key constraints of the loaded tables are dropped for the
load and made again after it (one sorted build each, one set-based check per foreign key)
instead of being maintained row by row; all of it commits or none of it does.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction

from benchmarks.dataset.columns import CHUNK_ROWS, Table
from benchmarks.dataset.spec import DatasetSpec
from benchmarks.dataset.tables import dataset_tables
from trading.services.candles_derived import derived_candles_backfill
from trading.services.partitions import (
    market_data_partition_keys_named,
    market_data_partitions_ahead,
    market_data_partitions_cluster,
    market_data_partitions_create,
    months_between,
)

Log = Callable[[str], None]

# Emptied by the load: the tables it fills, and with CASCADE every table referring to a bot
# (signals, risk metrics, tokens, configurations, audit rows). Portfolio snapshots describe
# the old data; they go too.
TRUNCATED = (
    "trading.bots",
    "trading.market_data",
    "trading.market_candles_derived",
    "trading.market_candles_backlog",
    "analytics.portfolio_snapshots",
)
LOADED = (
    "trading.bots",
    "trading.positions",
    "trading.trades",
    "trading.orders",
    "trading.order_fills",
    "trading.account_balance",
    "trading.market_data",
)
CHECKED = ("trading.bots", "trading.trades", "trading.market_data")
MATERIALIZED_VIEWS = (
    "analytics.bot_daily_performance",
    "analytics.bot_performance_summary",
    "analytics.portfolio_daily_pnl",
)

_CONSTRAINTS_SQL = """
SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('f', 'u')
  AND NOT (c.contype = 'u' AND EXISTS (
      SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid))
ORDER BY c.contype DESC, 1, 2
"""
_INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""

_TYPES_SQL = """
SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""


class DatasetError(Exception):
    """The data set was not loaded; the message says why."""


@dataclass
class LoadReport:
    spec: DatasetSpec
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.as_json(),
            "rows": self.rows,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "total_seconds": round(self.total_seconds, 2),
        }


class _Clock:
    def __init__(self, report: LoadReport, log: Log) -> None:
        self.report, self.log = report, log
        self.last = time.perf_counter()

    def lap(self, step: str, *, quiet: bool = False) -> None:
        now = time.perf_counter()
        self.report.seconds[step] = self.report.seconds.get(step, 0.0) + now - self.last
        if not quiet or now - self.last >= 1:
            self.log(f"{step}: {now - self.last:.1f} s")
        self.last = now


def database_has_data() -> bool:
    with connection.cursor() as cursor:
        for table in CHECKED:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608 - constant
            row = cursor.fetchone()
            if row and row[0]:
                return True
    return False


def dataset_load(
    *,
    spec: DatasetSpec,
    replace: bool = False,
    log: Log = print,
    chunk_rows: int = CHUNK_ROWS,
) -> LoadReport:
    """Generate the data set of ``spec`` and load it, replacing what the tables held.

    Refuses (DatasetError) when bots, trades or candles are already stored, unless ``replace``:
    then every bot and everything recorded about them is deleted first. Each table is made as
    it is sent, ``chunk_rows`` rows at a time ("copy" includes making its rows).
    """
    report = LoadReport(spec=spec)
    clock = _Clock(report, log)
    tables = dataset_tables(spec)
    with_ids: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        # One loader at a time; a second one waits, then finds the data and refuses.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('atb.dataset_load'))")
        if not replace and database_has_data():
            raise DatasetError(
                "the database already holds bots, trades or candles; generate_dataset loads "
                "into an empty database only (--replace deletes every bot and all their data)"
            )
        cursor.execute(f"TRUNCATE {', '.join(TRUNCATED)} RESTART IDENTITY CASCADE")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute(_CONSTRAINTS_SQL, [list(LOADED)])
        constraints = cursor.fetchall()
        cursor.execute(_INDEXES_SQL, [list(LOADED)])
        indexes = cursor.fetchall()
        for table, name, _kind, _definition in constraints:  # foreign keys first
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for index, _definition in indexes:
            cursor.execute(f"DROP INDEX {index}")
        # The candles' months get their partitions, as ingestion would have made them (the
        # first market's candles span its whole price path).
        first_candle = spec.until - timedelta(minutes=spec.path_minutes)
        market_data_partitions_create(months=months_between(first_candle, spec.until))
        market_data_partitions_ahead(now=spec.until)
        clock.lap("truncate")
        sending: Table | None = next(tables)  # the paths, bots and trades are made for it
        clock.lap("generate")
        while sending is not None:
            _copy(cursor, sending, chunk_rows)
            report.rows[sending.name] = report.rows.get(sending.name, 0) + sending.rows
            if sending.name not in with_ids and any(c.name == "id" for c in sending.columns):
                with_ids.append(sending.name)
            clock.lap(f"copy {sending.name}")
            sending = None  # dropped before the next one is made
            sending = next(tables, None)
        for index, definition in indexes:
            cursor.execute(definition)
            clock.lap(f"index {index}", quiet=True)
        for table, name, _kind, definition in reversed(constraints):  # unique before foreign
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            clock.lap(f"constraint {table}.{name}", quiet=True)
        market_data_partition_keys_named()
        for name in with_ids:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(max(id), 0) + 1 FROM {name}), false)"
            )
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")
        clock.lap("materialized views")
        derived_candles_backfill()  # 5m to 1d from the minutes, as the ingest path keeps them
        clock.lap("derived candles")
        cursor.execute(f"ANALYZE {', '.join(LOADED)}, trading.market_candles_derived")
        clock.lap("analyze")
        # The months closed by then, as the maintenance task would have left them (clustered in
        # the candle key's order); the open month stays in arrival order, minute by minute.
        market_data_partitions_cluster(now=spec.until)
        clock.lap("cluster closed months")
    # What COPY could not freeze (rows routed to partitions), VACUUM does after the commit: hint
    # bits set and the visibility map filled, as autovacuum would leave them. (Not inside a
    # caller's transaction, a test's: VACUUM cannot run there.)
    if not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (FREEZE, ANALYZE) trading.market_data")
        clock.lap("vacuum trading.market_data")
    return report


def _copy(cursor: Any, table: Table, chunk_rows: int) -> None:
    cursor.execute(_TYPES_SQL, [table.name])
    pg_types = dict(cursor.fetchall())
    sql = table.copy_sql
    if _partitioned(cursor, table.name):  # PostgreSQL freezes no row routed to a partition
        sql = sql.replace(", FREEZE)", ")")
    with cursor.copy(sql) as copy:
        for chunk in table.chunks(pg_types, chunk_rows):
            copy.write(chunk)


def _partitioned(cursor: Any, table: str) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [table])
    row = cursor.fetchone()
    return bool(row and row[0])


def table_digests(tables: tuple[str, ...] = LOADED) -> dict[str, str]:
    """md5 of every row of each table, in id (or key) order: equal digests, equal tables."""
    digests: dict[str, str] = {}
    with connection.cursor() as cursor:
        for table in tables:
            key = "bot_id" if table == "trading.bots" else "id"
            cursor.execute(
                f"SELECT md5(string_agg(md5(t::text), '' ORDER BY t.{key})) FROM {table} t"  # noqa: S608
            )
            row = cursor.fetchone()
            digests[table] = row[0] if row and row[0] else ""
    return digests
