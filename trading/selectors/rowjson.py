"""A list page's rows as the API's JSON text, written by PostgreSQL: no model instance, no
Decimal and no datetime per value in Python.

``JsonRows(model, fields).queryset(qs, keys)`` annotates ``qs`` with the text of each row as
the output serializers write it (DRF's ``to_representation`` and ``JSONRenderer``):

- a decimal column is its ``numeric(p, s)`` text, which always has the column's ``s`` places
  (``"0.50000000"``), as DRF's ``DecimalField`` quantizes it;
- a time is ISO-8601 in UTC with ``Z``, microseconds only when there are any
  (``"2026-01-05T12:00:00Z"``, ``"2026-01-05T12:00:00.000160Z"``), as ``datetime.isoformat``;
- a foreign key is the related row's id, the owning bot its ``bot_id`` text;
- text is escaped by ``row_to_json`` exactly as Python's ``json`` escapes it with
  ``ensure_ascii=False`` (``\\"``, ``\\\\``, ``\\n``..., other control characters as ``\\u00XX``);
- a JSON column is re-encoded compactly in Python (``compact_json``): ``jsonb``'s own text puts
  a space after each ``:`` and ``,``, and today's answers hold the value as ``json.loads``
  reads it. The common empty ``{}`` and ``[]`` cost nothing.

PostgreSQL writes a row as text pieces: the JSON before the first JSON column, that column's
``jsonb`` text, the JSON up to the next JSON column, ..., and the end. ``join_rows`` puts them
together. Key columns of the cursor come as extra text columns (``key_text``).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

# datetime.isoformat() of a UTC time; ``Z`` for the API, ``+00:00`` for a cursor's key. A time
# on the second has no fraction: to_char writes ".000000", which replace() drops (cheaper than
# testing the time first).
_ISO = (
    "replace(to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US{zone}'), "
    "'.000000{bare}', '{bare}')"
)
ISO_Z = '"Z"'
ISO_OFFSET = '"+00:00"'

_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_EMPTY = frozenset(("{}", "[]"))


def iso_sql(column: str, *, zone: str = ISO_Z) -> str:
    """SQL: the ISO-8601 text of timestamptz ``column`` in UTC (``zone``: ISO_Z or ISO_OFFSET)."""
    return _ISO.format(col=column, zone=zone, bare=zone.strip('"'))


def compact_json(text: str) -> str:
    """A ``jsonb`` value's text as DRF writes it: compact, the value as ``json.loads`` reads it.

    A number no float holds (``1e400``; jsonb keeps it exactly) is left as PostgreSQL wrote it:
    re-encoding would refuse the infinity that ``json.loads`` makes of it.
    """
    if text in _EMPTY:
        return text
    try:
        return _ENCODE(json.loads(text))
    except ValueError:
        return text


def join_rows(rows: Sequence[Sequence[Any]], json_columns: int) -> list[str]:
    """Each row's JSON from the pieces PostgreSQL wrote (see the module's docstring). A page's
    rows often share a JSON value (a strategy's settings): each distinct text is re-encoded
    once."""
    if not json_columns:
        return [str(parts[0]) for parts in rows]
    compacted: dict[str | None, str] = {None: "null"}
    out = []
    for parts in rows:
        pieces = [parts[0]]
        for i in range(json_columns):
            value = parts[2 * i + 1]
            text = compacted.get(value)
            if text is None:
                text = compacted[value] = compact_json(value)
            pieces.append(text)
            pieces.append(parts[2 * i + 2])
        out.append("".join(pieces))
    return out


@dataclass(frozen=True)
class JsonRows:
    """The JSON text of ``model``'s rows with ``fields`` in this order (an output serializer's)."""

    model: type[models.Model]
    fields: tuple[str, ...]
    json_columns: int = field(init=False)
    _pieces: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        qn = connection.ops.quote_name
        table = qn(self.model._meta.db_table)
        groups: list[list[tuple[str, str]]] = [[]]
        json_fields: list[str] = []
        for name in self.fields:
            model_field = _model_field(self.model, name)
            column = f"{table}.{qn(str(model_field.column))}"
            if isinstance(model_field, models.JSONField):
                json_fields.append(f"{column}::text")
                groups.append([])
                groups[-2].append((name, ""))  # the key, then the value spliced in Python
                continue
            groups[-1].append((name, _value_sql(model_field, column)))
        pieces: list[str] = []
        for i, group in enumerate(groups):
            pieces.append(_piece_sql(group, first=i == 0, last=i == len(groups) - 1))
            if i < len(json_fields):
                pieces.append(json_fields[i])
        object.__setattr__(self, "json_columns", len(json_fields))
        object.__setattr__(self, "_pieces", tuple(pieces))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"_json_{i}" for i in range(len(self._pieces)))

    def queryset(self, queryset: QuerySet[Any], keys: Sequence[str] = ()) -> QuerySet[Any]:
        """``queryset`` as tuples: the row's pieces, then the text of each of ``keys`` (cursor
        keys: a time as ``isoformat()`` writes it, anything else as its text)."""
        qn = connection.ops.quote_name
        table = qn(self.model._meta.db_table)
        annotations: dict[str, Any] = {
            # Quoted names from the model's meta and constant text: no value of anyone's.
            name: RawSQL(sql, ())  # noqa: S611
            for name, sql in zip(self.names, self._pieces, strict=True)
        }
        key_names = []
        for i, key in enumerate(keys):
            model_field = _model_field(self.model, key)
            column = f"{table}.{qn(str(model_field.column))}"
            sql = (
                iso_sql(column, zone=ISO_OFFSET)
                if isinstance(model_field, models.DateTimeField)
                else f"{column}::text"
            )
            key_names.append(f"_key_{i}")
            annotations[key_names[-1]] = RawSQL(sql, ())  # noqa: S611 - as above
        return queryset.annotate(**annotations).values_list(*self.names, *key_names)

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[str]:
        return join_rows(rows, self.json_columns)


def _model_field(model: type[models.Model], name: str) -> "models.Field[Any, Any]":
    found = model._meta.get_field(name)
    if not isinstance(found, models.Field) or found.column is None:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return found


def _value_sql(model_field: "models.Field[Any, Any]", column: str) -> str:
    if isinstance(model_field, models.DecimalField):
        return f"{column}::text"
    if isinstance(model_field, models.DateTimeField):
        return iso_sql(column)
    if isinstance(model_field, models.ForeignKey):
        return column  # the related row's key: a number, or the bot's text id
    if isinstance(
        model_field,
        models.CharField | models.TextField | models.IntegerField | models.BooleanField,
    ):
        return column
    raise TypeError(f"no JSON text for {type(model_field).__name__} {model_field.name}")


def _piece_sql(group: list[tuple[str, str]], *, first: bool, last: bool) -> str:
    """SQL: the text of ``group``'s members, ``row_to_json`` of those with a value; a member
    without (a JSON column's key) closes the piece with ``"name":``."""
    valued = [(name, sql) for name, sql in group if sql]
    open_key = [name for name, sql in group if not sql]
    if valued:
        columns = ", ".join(f'{sql} AS "{name}"' for name, sql in valued)
        text = f"row_to_json((SELECT r FROM (SELECT {columns}) r))::text"  # noqa: S608 - names
        # '{"a":1,"b":2}' -> '{"a":1,"b":2' (more to come) / ',"a":1,"b":2}' (after a value)
        if not last or open_key:
            text = f"left({text}, -1)"
        if not first:
            text = f"',' || substr({text}, 2)"
    else:
        text = "'{'" if first else "''"
    if open_key:
        sep = "" if first and not valued else ","
        text = f"{text} || '{sep}\"{open_key[0]}\":'"
    elif last and not valued:
        text = f"{text} || '}}'"
    return text


_OF_SERIALIZER: dict[type[Any], JsonRows | None] = {}


def json_rows_of(serializer_class: type[Any]) -> JsonRows | None:
    """The JsonRows that write what ``serializer_class`` (an output ModelSerializer) writes, or
    None when one of its fields is not a plain column of its model (a nested serializer, a
    method field): those are written by DRF."""
    if serializer_class not in _OF_SERIALIZER:
        _OF_SERIALIZER[serializer_class] = _json_rows_of(serializer_class)
    return _OF_SERIALIZER[serializer_class]


def _json_rows_of(serializer_class: type[Any]) -> JsonRows | None:
    meta = getattr(serializer_class, "Meta", None)
    model, fields = getattr(meta, "model", None), getattr(meta, "fields", None)
    if model is None or not isinstance(fields, tuple | list):
        return None
    declared = getattr(serializer_class, "_declared_fields", {})
    for name, declared_field in declared.items():
        source = getattr(declared_field, "source", None)
        if name != "bot_id" or source not in (None, "bot_id"):
            return None  # only the owner's id is declared by hand: anything else is DRF's
    try:
        return JsonRows(model, tuple(fields))
    except (TypeError, LookupError):
        return None
