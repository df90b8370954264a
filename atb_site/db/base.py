import math
import select
from typing import Any, cast

import environ
import psycopg
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base, introspection, operations
from django.db.backends.utils import CursorWrapper
from psycopg.pq import ConnStatus, TransactionStatus

from atb_site.db import deadline, session


class DatabaseIntrospection(introspection.DatabaseIntrospection):
    def get_table_list(self, cursor: Any) -> Any:
        tables = list(super().get_table_list(cursor))
        cursor.execute(
            """
            SELECT n.nspname || '"."' || c.relname,
                   CASE WHEN c.relispartition THEN 'p'
                        WHEN c.relkind IN ('m', 'v') THEN 'v'
                        ELSE 't' END,
                   obj_description(c.oid, 'pg_class')
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND n.nspname = ANY(%s)
            """,
            [list(settings.DATABASE_APP_SCHEMAS)],
        )
        return tables + [introspection.TableInfo(*row) for row in cursor.fetchall()]


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str:
        # A prepared cursor (below) sends $1, $2 ... and its values apart; what it ran, as
        # Django reports for its own cursors (debug logging, captured queries), is the SQL with
        # the values written in.
        if isinstance(cursor, base.ServerBindingCursor):
            try:
                return str(self.compose_sql(sql, params))
            except psycopg.errors.DataError:  # a value psycopg cannot write: the SQL alone
                return sql
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection
    ops_class = DatabaseOperations

    def get_connection_params(self) -> dict[str, Any]:
        """Django's, with this kind of process's session timeouts (atb_site/db/session.py)
        ahead of any ``options`` of DATABASE_URL's, which therefore win; behind PgBouncer, the
        database of this kind on it instead, whose server connections carry them."""
        params = super().get_connection_params()
        timeouts = session.startup_options()
        if timeouts:
            params["options"] = f"{timeouts} {params.get('options', '')}".strip()
        elif settings.DATABASE_PGBOUNCER and "dbname" in params:
            params["dbname"] = session.pgbouncer_database(params["dbname"])
        return params

    @property
    def pool(self) -> Any:
        """Django's psycopg pool (DATABASE_POOL), held to a web request's deadline as our own
        connections are: the check the pool runs on a connection before handing it out (a query,
        on a server that may have stopped answering) is watched, and waiting for a connection
        gives up when the request's time is up rather than after the pool's timeout."""
        pool = super().pool
        if pool is None or getattr(pool, "held_to_deadlines", False):
            return pool
        check, getconn, alias = pool._check, pool.getconn, self.alias

        def watched_check(conn: psycopg.Connection[Any]) -> None:
            with deadline.watching(conn, alias=f"{alias}, pool check"):
                check(conn)

        def getconn_in_time(timeout: float | None = None) -> Any:
            left = deadline.remaining()
            if timeout is None and left is not None:
                timeout = max(min(pool.timeout, left), 0.001)
            return getconn(timeout)

        if check is not None:
            pool._check = watched_check
        pool.getconn = getconn_in_time
        pool.held_to_deadlines = True
        return pool

    def is_usable(self) -> bool:
        """Django's health check (CONN_HEALTH_CHECKS, at a request's first query on a kept
        connection) without its round trip when nothing came from the server since the
        connection's last use: a server that ends a session (restart, pg_terminate_backend,
        an idle timeout) says so or closes the socket, either of which makes it readable, and
        only then is ``SELECT 1`` sent to find out. A trade POST made three round trips to
        PostgreSQL; now two."""
        conn = self.connection
        if conn is None:
            return False
        try:
            idle = (
                conn.pgconn.status == ConnStatus.OK
                and conn.pgconn.transaction_status == TransactionStatus.IDLE
            )
            readable = select.select([conn.pgconn.socket], [], [], 0)[0] if idle else True
        except (OSError, ValueError, psycopg.Error):
            return False
        return bool(super().is_usable()) if readable else True

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """Within a web request's deadline (atb_site/db/deadline.py), connecting gets no more than
        the time left, and nothing once it has passed: a server that accepts the TCP connection
        but never answers would otherwise hold the request for the whole connect timeout."""
        left = deadline.remaining()
        if left is not None:
            if left <= 0:
                raise psycopg.OperationalError(
                    "the request's deadline for the database passed; not connecting"
                )
            configured = int(conn_params.get("connect_timeout") or 0)
            budget = math.ceil(left) if configured <= 0 else min(configured, math.ceil(left))
            conn_params = {**conn_params, "connect_timeout": budget}
        return super().get_new_connection(conn_params)

    def prepared_cursor(self) -> CursorWrapper:
        """A cursor that binds its parameters on the server, so that psycopg prepares a
        statement once it has run it ``prepare_threshold`` times (psycopg's default: 5) on this
        connection, and later runs skip parsing and planning. Django's own cursors bind on the
        client, which cannot be prepared.

        For the statements every API request runs, whose text never changes (the token look-up,
        the trade upsert): planning the upsert took longer than running it. Only statements
        written for server-side binding belong here: every parameter in a typed context (a
        cast, a column), since the server, not psycopg, fills them in. Otherwise an ordinary
        Django cursor: health check, error wrapping, execute_wrapper and debug logging alike.
        """
        self.close_if_health_check_failed()
        self.ensure_connection()
        cursor = cast(Any, base.ServerBindingCursor)(self.connection)  # (django-stubs lack both)
        with self.wrap_database_errors:
            return cast(CursorWrapper, cast(Any, self)._prepare_cursor(cursor))


def direct_settings_dict() -> dict[str, Any]:
    """The default database's settings, for the PostgreSQL server itself: behind PgBouncer
    (DATABASE_PGBOUNCER), with DATABASE_DIRECT_URL's host, port, user, password and options.
    The database keeps its configured name (the test runner's, under pytest): PgBouncer serves
    each database under its own name (atb_site/db/pgbouncer.py)."""
    configured = connections["default"].settings_dict
    if not settings.DATABASE_PGBOUNCER:
        return dict(configured)
    direct = environ.Env.db_url_config(settings.DATABASE_DIRECT_URL)
    server = {key: direct.get(key, "") for key in ("HOST", "PORT", "USER", "PASSWORD")}
    options = {**configured["OPTIONS"], **direct.get("OPTIONS", {})}
    options.pop("prepare_threshold", None)
    return {**configured, **server, "OPTIONS": options}


def direct_connection_params() -> dict[str, Any]:
    """psycopg's parameters for a connection to the PostgreSQL server itself, never through
    PgBouncer, with this kind of process's session timeouts. For what must outlive a
    transaction (a session-level advisory lock, VACUUM) or keep one session (pg_dump)."""
    wrapper = connections["default"]
    if not settings.DATABASE_PGBOUNCER:
        return dict(wrapper.get_connection_params())
    params = dict(base.DatabaseWrapper(direct_settings_dict(), "direct").get_connection_params())
    options = session.startup_options(pooled=False)
    params["options"] = f"{options} {params.get('options', '')}".strip()
    return params


def prepared_cursor(using: str = "default") -> CursorWrapper:
    """``connections[using].prepared_cursor()`` (see DatabaseWrapper.prepared_cursor)."""
    wrapper = connections[using]
    if not isinstance(wrapper, DatabaseWrapper):  # another engine: its own cursor
        return wrapper.cursor()
    return wrapper.prepared_cursor()
