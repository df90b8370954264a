"""What the database holds (pg_catalog) and how PostgreSQL spells the types Django asks for."""

import re
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view"}


@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool


@dataclass
class Catalog:
    """What the database holds in the schemas we look at."""

    relations: dict[str, str]  # "schema.name" -> relkind
    populated: dict[str, bool]  # materialized views
    columns: dict[str, dict[str, Column]]  # "schema.name" -> column -> Column
    unique_indexes: dict[str, list[str]]  # "schema.name" -> unique, non-partial index names
    triggers: dict[tuple[str, str], str]  # ("schema.name", trigger) -> tgenabled
    estimates: dict[str, int]


def models_installed(*, ours: bool = False) -> list[type[models.Model]]:
    base = Path(settings.BASE_DIR).resolve()
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if not model._meta.proxy
        and not model._meta.swapped
        and (not ours or Path(model._meta.app_config.path).resolve().parent == base)
    ]


def relation_name(model: type[models.Model], *, default_schema: str) -> str:
    """``schema.table`` of a model: ``trading"."trades`` (trading.db.schema_table) is
    ``trading.trades``; an unqualified table lives in the default schema."""
    db_table = model._meta.db_table
    if '"."' in db_table:
        schema, table_name = db_table.split('"."', 1)
        return f"{schema}.{table_name}"
    return f"{default_schema}.{db_table}"


_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
}


def canonical_type(db_type: str) -> str:
    """Django's spelling of a column type as PostgreSQL's format_type() spells it:
    ``varchar(64)`` -> ``character varying(64)``, ``numeric(20, 8)`` -> ``numeric(20,8)``."""
    text = " ".join(db_type.lower().split())
    array = ""
    while text.endswith("[]"):
        text, array = text[:-2].rstrip(), array + "[]"
    match = re.fullmatch(r"([a-z][a-z0-9 ]*?)\s*(\(([^)]*)\))?", text)
    if match is None:
        return text + array
    name, modifier = match.group(1), match.group(3)
    name = {"varchar": "character varying", "char": "character"}.get(name, name)
    name = _ALIASES.get(name, name)
    if modifier is None:
        return name + array
    modifier = ",".join(part.strip() for part in modifier.split(","))
    return f"{name}({modifier}){array}"


def base_type(canonical: str) -> str:
    return re.sub(r"\([^)]*\)", "", canonical)


def catalog_read(connection: BaseDatabaseWrapper, *, schemas: list[str]) -> Catalog:
    catalog = Catalog(
        relations={}, populated={}, columns={}, unique_indexes={}, triggers={}, estimates={}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH estimates AS (
                SELECT c.oid, GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0) AS rows
                FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
            )
            -- A partition is its table's (trading.market_data's months): not a relation of
            -- its own, its rows counted in its table's estimate.
            SELECT n.nspname || '.' || c.relname, c.relkind,
                   CASE WHEN c.relkind = 'p' THEN (
                       SELECT COALESCE(sum(e.rows), 0) FROM pg_inherits i
                       JOIN estimates e ON e.oid = i.inhrelid WHERE i.inhparent = c.oid
                   ) ELSE (SELECT e.rows FROM estimates e WHERE e.oid = c.oid) END::bigint,
                   c.relkind <> 'm' OR c.relispopulated
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname = ANY(%s)
              AND NOT c.relispartition
            """,
            [schemas],
        )
        for name, kind, estimate, populated in cursor.fetchall():
            catalog.relations[name] = kind
            catalog.estimates[name] = int(estimate)
            catalog.populated[name] = bool(populated)
        cursor.execute(
            """
            SELECT n.nspname || '.' || c.relname, a.attname,
                   format_type(a.atttypid, a.atttypmod), a.attnotnull
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname = ANY(%s)
              AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            [schemas],
        )
        for name, column, type_, not_null in cursor.fetchall():
            catalog.columns.setdefault(name, {})[column] = Column(type=type_, not_null=not_null)
        cursor.execute(
            """
            SELECT n.nspname || '.' || t.relname, i.relname
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE x.indisunique AND x.indpred IS NULL AND n.nspname = ANY(%s)
            """,
            [schemas],
        )
        for name, index in cursor.fetchall():
            catalog.unique_indexes.setdefault(name, []).append(index)
        cursor.execute(
            """
            SELECT n.nspname || '.' || c.relname, t.tgname, t.tgenabled
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND n.nspname = ANY(%s)
            """,
            [schemas],
        )
        for name, trigger, enabled in cursor.fetchall():
            catalog.triggers[(name, trigger)] = enabled
    return catalog
