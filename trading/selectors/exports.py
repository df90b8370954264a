"""Rows for an export (CSV, Parquet): a filtered queryset's rows as CSV text written by
PostgreSQL's ``COPY (SELECT ...) TO STDOUT (FORMAT csv)``, streamed in chunks.

No model instance, no Decimal and no datetime per value in Python: PostgreSQL writes each value
as text, so memory stays flat whatever the number of rows, and the text is exact:

- a ``numeric(p, s)`` column is its own text, with the column's ``s`` places (``0.50000000``);
- a time is ISO-8601 in UTC with ``Z``, microseconds only when there are any, as the JSON API
  writes it (``trading.selectors.rowjson.iso_sql``);
- a boolean is ``true`` / ``false``; a JSON column its ``jsonb`` text; a foreign key the related
  row's key;
- NULL is an empty unquoted field, an empty text ``""`` (COPY's CSV rules).

``export_columns`` reads each column's type from the model (a decimal's precision and scale
from its ``DecimalField``), which is also what the Parquet writer types its columns by
(``trading.api.exports``).
"""

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, transaction
from django.db.models import F, QuerySet
from django.db.models.expressions import Func

from trading.selectors.rowjson import iso_sql

# Bytes handed on at a time (COPY gives one row per message).
CHUNK_BYTES = 256 * 1024
# How long one export's statement may run (it lasts as long as the client reads): the web's own
# statement_timeout is far shorter than a million rows take to send.
STATEMENT_TIMEOUT_MS = 15 * 60 * 1000


class IsoUtc(Func):
    """A timestamptz as the API's ISO-8601 text in UTC."""

    output_field = models.TextField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return iso_sql(f"({sql})"), params


class BoolText(Func):
    """A boolean as ``true`` / ``false`` (COPY alone writes ``t`` / ``f``)."""

    template = "(%(expressions)s)::text"
    output_field = models.TextField()


@dataclass(frozen=True)
class ExportColumn:
    """One exported column: its name (the JSON field's), the model field it comes from (its type:
    ``kind`` and, for a decimal, ``digits`` and ``places``), and the path to it."""

    name: str
    path: str
    kind: str  # decimal, datetime, date, integer, boolean, text, json
    digits: int | None = None
    places: int | None = None

    def expression(self) -> Any:
        value = F(self.path)
        if self.kind == "datetime":
            return IsoUtc(value)
        if self.kind == "boolean":
            return BoolText(value)
        return value


def _field_at(model: type[models.Model], path: str) -> "models.Field[Any, Any]":
    *hops, last = path.split("__")
    for hop in hops:
        related = model._meta.get_field(hop).related_model
        if not isinstance(related, type):
            raise TypeError(f"{model.__name__}.{hop} is not a relation")
        model = related
    found = model._meta.get_field(last)
    if not isinstance(found, models.Field):
        raise TypeError(f"{model.__name__}.{last} is not a column")
    return found


def _kind(field: "models.Field[Any, Any]") -> tuple[str, int | None, int | None]:
    if isinstance(field, models.ForeignKey):
        return _kind(field.target_field)
    if isinstance(field, models.DecimalField):
        return "decimal", field.max_digits, field.decimal_places
    if isinstance(field, models.DateTimeField):
        return "datetime", None, None
    if isinstance(field, models.DateField):
        return "date", None, None
    if isinstance(field, models.BooleanField):
        return "boolean", None, None
    if isinstance(field, models.IntegerField | models.AutoField):
        return "integer", None, None
    if isinstance(field, models.JSONField):
        return "json", None, None
    if isinstance(field, models.CharField | models.TextField):
        return "text", None, None
    raise TypeError(f"no export type for {type(field).__name__} {field.name}")


def export_columns(
    model: type[models.Model], names: Sequence[str], paths: Mapping[str, str] | None = None
) -> list[ExportColumn]:
    """The columns ``names`` of ``model`` (``paths`` maps a name to another path, e.g.
    ``order__bot_id``), typed from the model's fields."""
    columns = []
    for name in names:
        path = (paths or {}).get(name, name)
        kind, digits, places = _kind(_field_at(model, path))
        columns.append(ExportColumn(name, path, kind, digits, places))
    return columns


def export_sql(
    queryset: QuerySet[Any], columns: Sequence[ExportColumn], ordering: Sequence[str], alias: str
) -> tuple[str, tuple[Any, ...]]:
    """The COPY statement (parameters bound client-side) that writes ``queryset``'s rows."""
    selected = queryset.order_by(*ordering).values(
        **{f"c{i}": column.expression() for i, column in enumerate(columns)}
    )
    # django-filter's multiple-choice filters (?status=a&status=b) ask for DISTINCT, for which
    # Django adds the ORDER BY columns to the SELECT list: a column too many in every row, and a
    # sort of the whole export. The lists' filters are on the row's own columns and many-to-one
    # joins, which never repeat a row.
    selected.query.distinct = False
    sql, params = selected.query.get_compiler(using=alias).as_sql()
    return f"COPY ({sql}) TO STDOUT (FORMAT csv)", tuple(params)


def export_csv_chunks(
    queryset: QuerySet[Any],
    columns: Sequence[ExportColumn],
    *,
    ordering: Sequence[str],
    alias: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Generator[bytes]:
    """The rows as CSV (no header), in chunks of about ``chunk_bytes``, from one COPY in a
    transaction of its own on ``alias`` (the queryset's database by default: a replica for a
    staff read). Meant to be iterated after the view returned (a streamed answer): nothing runs
    before the first chunk is asked for. Closing the iterator early ends the COPY and rolls
    the transaction back."""
    alias = alias or queryset.db
    sql, params = export_sql(queryset, columns, ordering, alias)
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('datestyle', 'ISO', true)",
            (str(STATEMENT_TIMEOUT_MS),),
        )
        with connection.wrap_database_errors, cursor.cursor.copy(sql, params) as copy:
            pending: list[Any] = []
            size = 0
            for row in copy:
                pending.append(row)
                size += len(row)
                if size >= chunk_bytes:
                    yield b"".join(pending)
                    pending.clear()
                    size = 0
            if pending:
                yield b"".join(pending)
