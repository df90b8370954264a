"""``db_verify``: does the database match the code?

Checked, in order (a failed connection stops the rest):

- connection: the server answers; its version and one round trip's latency.
- schemas: every schema of settings.DATABASE_APP_SCHEMAS exists.
- relations: the table of every managed model of every installed app (Django's and
  django_celery_beat's included: the service needs them too), the relation of every unmanaged
  model, the tables and triggers the migrations create in SQL (SQL_ONLY_TABLES, TRIGGERS), and
  the materialized views with the unique index REFRESH ... CONCURRENTLY needs. Tables in our
  schemas that no model or migration claims are warnings.
- columns: for every concrete field of every model of our apps (the packages in settings.BASE_DIR;
  Django's own apps are left to Django: their many-to-many tables' ``id`` is bigint in the
  database while the model state says integer), the column exists with the type Django would create
  (``field.db_type``, spelled as PostgreSQL's ``format_type`` spells it) and the same
  nullability. A view's columns are computed, so only their base type is compared
  (``numeric``, not ``numeric(20,8)``) and not their nullability. Extra columns are warnings.
- migrations: none unapplied, no inconsistent history, no conflicting leaves; migrations recorded
  as applied that the code no longer has are warnings.
- row counts (facts, never a failure): exact ``count(*)`` for a table the statistics put under
  EXACT_COUNT_BELOW rows, PostgreSQL's estimate (pg_class.reltuples, pg_stat_user_tables) above
  it, so the command stays fast on a big market_data table; ``exact=True`` counts every table.
"""

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor

from audit.dbadmin.catalog import (
    TABLE_KINDS,
    Catalog,
    base_type,
    canonical_type,
    catalog_read,
    models_installed,
    relation_name,
)
from audit.dbadmin.report import Report, plural, table

# Made by RunSQL in the migrations, so no model describes them.
SQL_ONLY_TABLES = ("analytics.bot_trade_versions",)
MATERIALIZED_VIEWS = (
    "analytics.bot_daily_performance",
    "analytics.bot_performance_summary",
    "analytics.portfolio_daily_pnl",
)
TRIGGERS = (
    ("trading.trades", "trades_version_insert"),
    ("trading.trades", "trades_version_update"),
    ("trading.trades", "trades_version_delete"),
    ("audit.system_events", "system_events_append_only"),
    ("audit.change_log", "change_log_append_only"),
)
EXACT_COUNT_BELOW = 100_000


def database_verify(*, using: str = DEFAULT_DB_ALIAS, exact: bool = False) -> Report:
    connection = connections[using]
    where = connection.settings_dict
    report = Report(
        title=f"db_verify: database {where['NAME']} at {where.get('HOST') or 'local socket'}"
        f"{':' + str(where['PORT']) if where.get('PORT') else ''}"
    )
    try:
        default_schema = _connection_check(connection, report)
    except DatabaseError as error:
        message = " ".join(str(error).split())
        report.add("connection", "error", str(where["NAME"]), f"cannot connect: {message}")
        return report
    schemas = [*settings.DATABASE_APP_SCHEMAS, default_schema]
    catalog = catalog_read(connection, schemas=schemas)
    _schemas_check(connection, report)
    expected = _relations_check(catalog, report, default_schema=default_schema)
    _columns_check(connection, catalog, report, default_schema=default_schema)
    _migrations_check(connection, report)
    report.facts["row_counts"] = _row_counts(connection, catalog, expected, exact=exact)
    return report


def render_row_counts(counts: Iterable[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = [("TABLE", "ROWS", "")]
    for count in counts:
        if count["rows"] is None:
            rows.append((count["table"], "-", "(not populated)"))
        else:
            rows.append(
                (count["table"], f"{count['rows']:,}", "(estimate)" if count["estimated"] else "")
            )
    return table(rows, right=frozenset({1}))


# --- the checks -----------------------------------------------------------------------------------


def _connection_check(connection: BaseDatabaseWrapper, report: Report) -> str:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT 1")
        cursor.fetchone()
        latency_ms = (time.perf_counter() - started) * 1000
        cursor.execute(
            "SELECT current_setting('server_version'), current_database(), current_user, "
            "current_schema()"
        )
        version, database, user, default_schema = cursor.fetchone()
    report.facts["connection"] = {
        "server_version": version,
        "database": database,
        "user": user,
        "latency_ms": round(latency_ms, 3),
    }
    report.add(
        "connection",
        "ok",
        str(database),
        f"PostgreSQL {version} as {user}, round trip {latency_ms:.1f} ms",
        server_version=version,
        latency_ms=round(latency_ms, 3),
    )
    return str(default_schema or "public")


def _schemas_check(connection: BaseDatabaseWrapper, report: Report) -> None:
    wanted = list(settings.DATABASE_APP_SCHEMAS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [wanted])
        found = {row[0] for row in cursor.fetchall()}
    missing = [schema for schema in wanted if schema not in found]
    for schema in missing:
        report.add("schemas", "error", schema, "schema missing", expected=schema, found=None)
    if not missing:
        report.add("schemas", "ok", ", ".join(wanted), f"{plural(len(wanted), 'schema')} exist")


def _relations_check(catalog: Catalog, report: Report, *, default_schema: str) -> list[str]:
    """Check every relation the code expects; return them, in order, for the row counts."""
    expected: list[str] = []
    errors_before = len(report.errors)
    tables = 0
    for model in models_installed():
        name = relation_name(model, default_schema=default_schema)
        if name in expected:
            continue
        expected.append(name)
        kind = catalog.relations.get(name)
        if model._meta.managed:
            tables += 1
            if kind is None:
                report.add("relations", "error", name, f"table missing (model {model._meta.label})")
            elif kind not in ("r", "p"):
                report.add(
                    "relations",
                    "error",
                    name,
                    f"expected a table (model {model._meta.label}), found a {TABLE_KINDS[kind]}",
                )
        elif kind is None:
            report.add(
                "relations",
                "error",
                name,
                f"relation missing (unmanaged model {model._meta.label})",
            )
    for name in SQL_ONLY_TABLES:
        expected.append(name)
        tables += 1
        if catalog.relations.get(name) not in ("r", "p"):
            report.add("relations", "error", name, "table missing (created by a migration's SQL)")
    for name in MATERIALIZED_VIEWS:
        kind = catalog.relations.get(name)
        if kind != "m":
            found = "nothing" if kind is None else f"a {TABLE_KINDS[kind]}"
            report.add("relations", "error", name, f"materialized view missing (found {found})")
            continue
        if not catalog.unique_indexes.get(name):
            report.add(
                "relations",
                "error",
                name,
                "materialized view has no unique index: REFRESH ... CONCURRENTLY will fail",
            )
        if not catalog.populated.get(name):
            report.add(
                "relations", "error", name, "materialized view is not populated: run a refresh"
            )
    for table_name, trigger in TRIGGERS:
        enabled = catalog.triggers.get((table_name, trigger))
        if enabled is None:
            report.add("relations", "error", f"{table_name} {trigger}", "trigger missing")
        elif enabled == "D":
            report.add("relations", "error", f"{table_name} {trigger}", "trigger disabled")
    ours = tuple(f"{schema}." for schema in settings.DATABASE_APP_SCHEMAS)
    for name, kind in sorted(catalog.relations.items()):
        if name.startswith(ours) and name not in expected and name not in MATERIALIZED_VIEWS:
            report.add(
                "relations",
                "warning",
                name,
                f"{TABLE_KINDS[kind]} that no model or migration of the code describes",
            )
    if len(report.errors) == errors_before:
        report.add(
            "relations",
            "ok",
            "tables, views, triggers",
            f"{plural(tables, 'table')}, {plural(len(MATERIALIZED_VIEWS), 'materialized view')} "
            f"with unique indexes, {plural(len(TRIGGERS), 'trigger')}",
        )
    return expected


def _columns_check(
    connection: BaseDatabaseWrapper, catalog: Catalog, report: Report, *, default_schema: str
) -> None:
    errors_before = len(report.errors)
    checked = 0
    seen: set[str] = set()
    for model in models_installed(ours=True):
        name = relation_name(model, default_schema=default_schema)
        found_columns = catalog.columns.get(name)
        if name in seen or found_columns is None:
            continue  # a missing relation is reported once, by the relations check
        seen.add(name)
        is_view = catalog.relations[name] in ("v", "m")
        fields = [f for f in model._meta.concrete_fields if f.column]
        for field in fields:
            db_type = field.db_type(connection)
            if field.column is None or db_type is None:
                continue
            subject = f"{name}.{field.column}"
            checked += 1
            expected = canonical_type(db_type)
            column = found_columns.get(field.column)
            if column is None:
                report.add(
                    "columns",
                    "error",
                    subject,
                    f"column missing (expected {expected}, field {model._meta.label}.{field.name})",
                    expected=expected,
                    found=None,
                )
                continue
            if is_view:
                type_matches = base_type(expected) == base_type(column.type)
            else:
                type_matches = expected == column.type
            if not type_matches:
                report.add(
                    "columns",
                    "error",
                    subject,
                    f"type: expected {expected}, found {column.type}",
                    expected=expected,
                    found=column.type,
                )
            if not is_view and column.not_null == field.null:
                want, have = ("NULL", "NOT NULL") if field.null else ("NOT NULL", "NULL")
                report.add(
                    "columns",
                    "error",
                    subject,
                    f"nullability: expected {want}, found {have}",
                    expected=want,
                    found=have,
                )
        known = {f.column for f in fields}
        for column_name, column in found_columns.items():
            if column_name not in known:
                report.add(
                    "columns",
                    "warning",
                    f"{name}.{column_name}",
                    f"extra column ({column.type}{' NOT NULL' if column.not_null else ''}) "
                    f"that model {model._meta.label} does not have",
                    expected=None,
                    found=column.type,
                )
    if len(report.errors) == errors_before:
        report.add(
            "columns",
            "ok",
            f"{plural(len(seen), 'relation')}",
            f"{plural(checked, 'column')} match their models' types and nullability",
        )


def _migrations_check(connection: BaseDatabaseWrapper, report: Report) -> None:
    executor = MigrationExecutor(connection)
    loader = executor.loader
    errors_before = len(report.errors)
    try:
        loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as error:
        report.add("migrations", "error", "history", f"inconsistent history: {error}")
    for app_label, names in sorted(loader.detect_conflicts().items()):
        report.add(
            "migrations",
            "error",
            app_label,
            f"conflicting migrations {', '.join(sorted(names))}: run makemigrations --merge",
        )
    plan = executor.migration_plan(loader.graph.leaf_nodes())
    for migration, _backwards in plan:
        report.add(
            "migrations",
            "error",
            f"{migration.app_label}.{migration.name}",
            "not applied: run `python manage.py migrate`",
        )
    for app_label, name in sorted(set(loader.applied_migrations) - set(loader.disk_migrations)):
        report.add(
            "migrations",
            "warning",
            f"{app_label}.{name}",
            "recorded as applied, but the code has no such migration",
        )
    report.facts["unapplied_migrations"] = [f"{m.app_label}.{m.name}" for m, _ in plan]
    if len(report.errors) == errors_before:
        applied = sum(1 for key in loader.applied_migrations if key in loader.disk_migrations)
        report.add(
            "migrations", "ok", "all", f"{plural(applied, 'migration')} applied, none pending"
        )


def _row_counts(
    connection: BaseDatabaseWrapper, catalog: Catalog, names: list[str], *, exact: bool
) -> list[dict[str, Any]]:
    counts: list[dict[str, Any]] = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for name in [*names, *MATERIALIZED_VIEWS]:
            kind = catalog.relations.get(name)
            if kind is None or kind == "v" or any(c["table"] == name for c in counts):
                continue
            if kind == "m" and not catalog.populated.get(name):
                counts.append({"table": name, "rows": None, "estimated": False})
                continue
            estimate = catalog.estimates.get(name, 0)
            if not exact and estimate >= EXACT_COUNT_BELOW:
                counts.append({"table": name, "rows": estimate, "estimated": True})
                continue
            schema, table_name = name.split(".", 1)
            cursor.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(table_name)}")  # noqa: S608 - quoted catalog names
            counts.append({"table": name, "rows": cursor.fetchone()[0], "estimated": False})
    return counts
