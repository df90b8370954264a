"""What PostgreSQL says about itself: connections, table sizes, the server, bots' heartbeats.

Read through Django's connection (they raise when PostgreSQL is down: callers decide). Table
sizes cover the schemas of our apps (settings.DATABASE_APP_SCHEMAS).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from trading.models import Bot


@dataclass(frozen=True)
class TableSize:
    schema: str
    table: str
    kind: str  # "table", "partitioned table", "materialized view"
    total_bytes: int  # heap, indexes and TOAST (of every partition, for a partitioned table)
    rows_estimate: int | None  # the planner's estimate (reltuples); None before any ANALYZE


KINDS = {"r": "table", "p": "partitioned table", "m": "materialized view"}

TABLE_SIZES_SQL = """
SELECT n.nspname, c.relname, c.relkind,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT COALESCE(sum(pg_total_relation_size(t.relid)), 0)
                  FROM pg_partition_tree(c.oid) t)
            ELSE pg_total_relation_size(c.oid) END::bigint,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT sum(p.reltuples) FILTER (WHERE p.reltuples >= 0)
                  FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid
                  WHERE t.isleaf)
            WHEN c.reltuples < 0 THEN NULL
            ELSE c.reltuples END::bigint
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
ORDER BY n.nspname, c.relname
"""


def table_sizes(*, using: str = DEFAULT_DB_ALIAS) -> list[TableSize]:
    with connections[using].cursor() as cursor:
        cursor.execute(TABLE_SIZES_SQL, [list(settings.DATABASE_APP_SCHEMAS)])
        return [
            TableSize(schema, table, KINDS[kind], int(size), None if rows is None else int(rows))
            for schema, table, kind, size, rows in cursor.fetchall()
        ]


CONNECTIONS_SQL = """
SELECT count(*)                                                     AS total,
       count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')        AS in_use,
       count(*) FILTER (WHERE state = 'active')                     AS active,
       count(*) FILTER (WHERE state = 'idle')                       AS idle,
       count(*) FILTER (WHERE state IN ('idle in transaction',
                                        'idle in transaction (aborted)')) AS idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock')             AS waiting_on_locks,
       EXTRACT(EPOCH FROM max(clock_timestamp() - xact_start))::float8 AS oldest_transaction_s,
       current_setting('max_connections')::int                      AS max_connections
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
"""


def connection_stats(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Client connections to our database (this one included): ``in_use`` are those not idle
    (running a statement, or inside a transaction); ``max_connections`` is the server's limit
    (for every database)."""
    with connections[using].cursor() as cursor:
        cursor.execute(CONNECTIONS_SQL)
        row = cursor.fetchone()
        columns = [c.name for c in cursor.description]
    stats = dict(zip(columns, row, strict=True))
    oldest = stats.pop("oldest_transaction_s")
    stats["oldest_transaction_seconds"] = None if oldest is None else round(float(oldest), 3)
    return stats


SERVER_SQL = """
SELECT current_setting('server_version'), current_database(), current_user,
       pg_is_in_recovery(), pg_postmaster_start_time(),
       pg_database_size(current_database()),
       COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
"""


@dataclass(frozen=True)
class ServerInfo:
    version: str
    database: str
    user: str
    in_recovery: bool
    started_at: datetime
    size_bytes: int
    ssl: bool
    pg_stat_statements: bool


def server_info(*, using: str = DEFAULT_DB_ALIAS) -> ServerInfo:
    with connections[using].cursor() as cursor:
        cursor.execute(SERVER_SQL)
        row = cursor.fetchone()
    return ServerInfo(*row)


def bot_heartbeats() -> list[tuple[str, datetime]]:
    """(bot_id, last_heartbeat_at) of every bot that has sent one, by bot_id."""
    rows = (
        Bot.objects.filter(last_heartbeat_at__isnull=False)
        .order_by("bot_id")
        .values_list("bot_id", "last_heartbeat_at")
    )
    return [(bot_id, ts) for bot_id, ts in rows if ts is not None]
