"""The monthly partitions of trading.market_data: made ahead, made on demand, clustered once
closed, dropped past retention.

trading.market_data is partitioned by range of ``ts``, one partition a calendar month (UTC),
named ``market_data_pYYYY_MM``, with no default partition: PostgreSQL's own declarative
partitioning, no extension.

- **Made ahead** by the maintenance task (this month and the next ``MONTHS_AHEAD``), and
  **on demand** by ingestion (trading.services.market) for a candle of any other month, so a
  candle is never refused for want of its partition.
- **Made without blocking the table.** A partition is created as a table of its own (LIKE the
  parent: columns, defaults, CHECK constraints) and then ATTACHed, which takes SHARE UPDATE
  EXCLUSIVE on the parent: reads and writes of the other months go on (CREATE TABLE ... PARTITION
  OF would take ACCESS EXCLUSIVE on the parent until the transaction ends). The attach builds
  the partition's indexes and checks its (empty) rows against the bounds.
- **Two sessions at once.** Creators serialize on a transaction-level advisory lock and look
  for the partition again under it, so the second finds the first's (committed) partition and
  both succeed; CREATE TABLE IF NOT EXISTS alone does not make that true (two creators both
  insert the name into the catalog and one fails on its unique index).
- **Clustered once closed.** A month ended a day ago is rewritten in the order of the candle key
  (CLUSTER on market_data_candle_uniq): one market's month of 1m candles then lies on about 600
  neighbouring pages instead of one page a minute (the candles of every market arrive minute by
  minute, each minute's on the same page). CLUSTER marks the index (pg_index.indisclustered), so
  a month is clustered once; a late candle afterwards lands at the end, harmlessly.
- **Retention** (``MARKET_DATA_RETENTION_DAYS``) detaches and drops each month whose end is
  older than that many days: dropping a table is a catalog change, not a delete of its rows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection

from trading.db import advisory_lock_key

PARENT = "trading.market_data"
SCHEMA = "trading"
PREFIX = "market_data_p"
MONTHS_AHEAD = 2
CLOSED_AFTER = timedelta(days=1)  # a month is clustered once it ended this long ago
CREATE_LOCK = "trading.market_data.partitions"


def month_of(at: datetime) -> date:
    """The first day of ``at``'s month, UTC."""
    utc = at.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PREFIX}{month.year:04d}_{month.month:02d}"


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def months_between(first: datetime, last: datetime) -> list[date]:
    """Every month from ``first``'s to ``last``'s, both included."""
    months = [month_of(first)]
    end = month_of(last)
    while months[-1] < end:
        months.append(next_month(months[-1]))
    return months


def partition_ddl(month: date) -> list[str]:
    """The statements that make ``month``'s partition without blocking the table: a table LIKE
    the parent (columns, defaults, CHECKs), its keys under names of their own (a refusal names
    ``market_data_candle_uniq_pYYYY_MM``: trading.api.errors reads it as the parent's), then
    ATTACH, which takes those keys as the partition's part of the parent's."""
    name = partition_name(month)
    table = f"{SCHEMA}.{name}"
    suffix = name.removeprefix("market_data")
    return [
        f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        f"ALTER TABLE {table} "
        f"ADD CONSTRAINT market_data_pkey{suffix} PRIMARY KEY (id, ts), "
        f"ADD CONSTRAINT market_data_candle_uniq{suffix} UNIQUE (symbol, exchange, timeframe, ts)",
        f"ALTER TABLE {PARENT} ATTACH PARTITION {table} "
        f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(next_month(month))}')",
    ]


def market_data_partition_keys_named() -> int:
    """Give each partition's part of the parent's keys its conventional name (partition_ddl's):
    a key added to the parent after its partitions (the data set's loader drops and adds
    market_data_candle_uniq around its COPY) gets names PostgreSQL makes up. How many renamed."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.relname, c.relname, t.relname
            FROM pg_class p
            JOIN pg_inherits i ON i.inhparent = p.oid
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_index x ON x.indexrelid = c.oid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE p.oid IN ('trading.market_data_pkey'::regclass,
                            'trading.market_data_candle_uniq'::regclass)
            """
        )
        wrong = [
            (index, f"{key}{table.removeprefix('market_data')}")
            for key, index, table in cursor.fetchall()
            if index != f"{key}{table.removeprefix('market_data')}"
        ]
        for index, name in wrong:
            cursor.execute(f"ALTER INDEX {SCHEMA}.{index} RENAME TO {name}")
    return len(wrong)


def _existing(names: list[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass AND c.relname = ANY(%s)
            """,
            [PARENT, names],
        )
        return {name for (name,) in cursor.fetchall()}


def market_data_partitions_create(*, months: list[date]) -> list[str]:
    """Create the partitions of ``months`` that do not exist; the names created. Runs in the
    caller's transaction (a batch's: its partitions commit with its candles)."""
    wanted = {partition_name(m): m for m in months}
    if not wanted or not set(wanted) - _existing(list(wanted)):
        return []
    created: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key(CREATE_LOCK)])
        missing = sorted(set(wanted) - _existing(list(wanted)))  # again, under the lock
        for name in missing:
            for statement in partition_ddl(wanted[name]):
                cursor.execute(statement)
            created.append(name)
    return created


def market_data_partitions_ahead(*, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
    """This month's partition and the next ``ahead`` months', those missing created."""
    months = [month_of(now)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return market_data_partitions_create(months=months)


@dataclass(frozen=True)
class Partition:
    name: str
    month: date
    clustered: bool


def market_data_partitions() -> list[Partition]:
    """Every partition of trading.market_data, oldest month first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, coalesce(bool_or(x.indisclustered), false)
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            LEFT JOIN pg_index x ON x.indrelid = c.oid
            WHERE i.inhparent = %s::regclass
            GROUP BY c.relname ORDER BY c.relname
            """,
            [PARENT],
        )
        rows = cursor.fetchall()
    found = []
    for name, clustered in rows:
        year, month = name.removeprefix(PREFIX).split("_")
        found.append(Partition(name, date(int(year), int(month), 1), clustered))
    return found


def _candle_index(partition: str) -> str:
    """The partition's index of market_data_candle_uniq (PostgreSQL names it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_index x ON x.indexrelid = c.oid
            WHERE i.inhparent = 'trading.market_data_candle_uniq'::regclass
              AND x.indrelid = %s::regclass
            """,
            [f"{SCHEMA}.{partition}"],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"{partition} has no index of market_data_candle_uniq")
    return str(row[0])


def market_data_partitions_cluster(*, now: datetime) -> list[str]:
    """CLUSTER each month that ended at least CLOSED_AFTER ago and was never clustered; the
    names clustered. Each holds ACCESS EXCLUSIVE on its own partition while it is rewritten
    (reads and late writes of that month wait, the other months' do not)."""
    done = []
    for partition in market_data_partitions():
        ended = datetime.combine(next_month(partition.month), datetime.min.time(), tzinfo=UTC)
        if partition.clustered or ended + CLOSED_AFTER > now:
            continue
        index = _candle_index(partition.name)
        with connection.cursor() as cursor:
            cursor.execute(f"CLUSTER {SCHEMA}.{partition.name} USING {index}")
            cursor.execute(f"ANALYZE {SCHEMA}.{partition.name}")
        done.append(partition.name)
    return done


@dataclass(frozen=True)
class DroppedMonth:
    partition: str
    month: date
    rows: int
    bytes: int

    def as_json(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "month": self.month.isoformat()[:7],
            "rows": self.rows,
            "bytes": self.bytes,
        }


def market_data_partitions_expired(*, now: datetime, days: int) -> list[Partition]:
    """The months whose end is more than ``days`` days before ``now``."""
    horizon = now - timedelta(days=days)
    return [
        p
        for p in market_data_partitions()
        if datetime.combine(next_month(p.month), datetime.min.time(), tzinfo=UTC) <= horizon
    ]


def market_data_partitions_drop(*, partitions: list[Partition]) -> list[DroppedMonth]:
    """Detach and drop ``partitions``; what each held (its rows, counted just before, and its
    size on disk). The detach takes ACCESS EXCLUSIVE on the parent until the caller's
    transaction ends: run it last and commit."""
    dropped = []
    with connection.cursor() as cursor:
        for p in partitions:
            table = f"{SCHEMA}.{p.name}"
            cursor.execute(f"SELECT count(*), pg_total_relation_size(%s) FROM {table}", [table])  # noqa: S608
            rows, size = cursor.fetchone() or (0, 0)
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {table}")
            cursor.execute(f"DROP TABLE {table}")
            dropped.append(DroppedMonth(p.name, p.month, int(rows), int(size)))
    return dropped
