"""What a database holds, table by table: the row count and an md5 of the ordered primary keys.

Computed at backup time inside the snapshot pg_dump reads (the manifest), and again in a restored
copy (the drill, tests): equal figures mean every row came back. Covered: every ordinary table
(partitions counted as themselves, their parent not, so no row counts twice) outside the system
schemas, that is our four schemas, Django's tables in ``public`` and anything else a dump holds;
tables that belong to an extension are left out, as pg_dump leaves out their data.

A table without a primary key is keyed by its whole row. Keys are compared as text in the "C"
collation, so the order is the same in every database whatever its locale.

Materialized views are counted too, but reported apart: pg_restore rebuilds them from the
restored tables (REFRESH), so a view that was stale at backup time comes back fresh, with other
rows. An unpopulated view has no count (None).
"""

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

SYSTEM_SCHEMAS_SQL = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)

RELATIONS_SQL = f"""
SELECT n.nspname, c.relname, c.relkind, c.relispopulated,
    array(
        SELECT a.attname
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary
        ORDER BY k.position
    ) AS key_columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND {SYSTEM_SCHEMAS_SQL}
    AND NOT EXISTS (
        SELECT FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    )
ORDER BY n.nspname, c.relname
"""  # noqa: S608 - constant text


@dataclass(frozen=True)
class TableFigures:
    rows: int
    pk_md5: str
    key: list[str]  # the primary-key columns; [] when the whole row is the key

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "pk_md5": self.pk_md5, "key": self.key}


@dataclass(frozen=True)
class DatabaseFigures:
    tables: dict[str, TableFigures]  # "schema.table"
    materialized_views: dict[str, int | None]

    def as_json(self) -> dict[str, Any]:
        return {
            "tables": {name: t.as_json() for name, t in self.tables.items()},
            "materialized_views": dict(self.materialized_views),
        }


def database_figures(conn: psycopg.Connection[Any]) -> DatabaseFigures:
    """The figures of every table, read in ``conn``'s current transaction (so in its snapshot
    when that is REPEATABLE READ)."""
    tables: dict[str, TableFigures] = {}
    views: dict[str, int | None] = {}
    for schema, name, kind, populated, key in conn.execute(RELATIONS_SQL).fetchall():
        relation = sql.Identifier(schema, name)
        label = f"{schema}.{name}"
        if kind == "m":
            if not populated:
                views[label] = None
                continue
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(relation)).fetchone()
            views[label] = int(row[0]) if row else 0
            continue
        if key:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in key)
            key_text: sql.Composable = sql.SQL("ROW({})::text").format(columns)
        else:
            key_text = sql.SQL("t::text")
        query = sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(k, E'\\n' ORDER BY k COLLATE \"C\"), ''))"
            " FROM (SELECT {} AS k FROM {} AS t) AS keys"
        ).format(key_text, relation)
        row = conn.execute(query).fetchone() or (0, "")
        tables[label] = TableFigures(rows=int(row[0]), pk_md5=str(row[1]), key=list(key))
    return DatabaseFigures(tables=tables, materialized_views=views)


@dataclass(frozen=True)
class Comparison:
    tables_compared: int
    mismatches: list[str]  # one line per table that differs; empty when all match
    view_notes: list[str]  # materialized views whose count differs (not a failure)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def figures_compare(*, expected: dict[str, Any], actual: DatabaseFigures) -> Comparison:
    """``expected`` is a manifest's ``tables``/``materialized_views`` (JSON)."""
    want_tables: dict[str, Any] = expected.get("tables", {})
    mismatches: list[str] = []
    for name in sorted(set(want_tables) | set(actual.tables)):
        want, got = want_tables.get(name), actual.tables.get(name)
        if want is None:
            mismatches.append(f"{name}: in the restored copy, not in the manifest")
        elif got is None:
            mismatches.append(f"{name}: in the manifest, missing from the restored copy")
        elif (want["rows"], want["pk_md5"]) != (got.rows, got.pk_md5):
            mismatches.append(
                f"{name}: {got.rows} rows (md5 {got.pk_md5}), expected {want['rows']} "
                f"(md5 {want['pk_md5']})"
            )
    notes = []
    want_views: dict[str, Any] = expected.get("materialized_views", {})
    for name in sorted(set(want_views) | set(actual.materialized_views)):
        want_rows, got_rows = want_views.get(name), actual.materialized_views.get(name)
        if want_rows != got_rows:
            notes.append(f"{name}: {got_rows} rows after restore, {want_rows} at backup time")
    return Comparison(tables_compared=len(want_tables), mismatches=mismatches, view_notes=notes)
