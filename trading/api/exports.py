"""Exports: ``?format=csv`` and ``?format=parquet`` on the list endpoints and the analytics
reads, with the same filters and authentication as their JSON.

The format is DRF's own content negotiation (``?format=`` is DRF's URL_FORMAT_OVERRIDE, and
``Accept: text/csv`` works too): an exporting view lists ``EXPORT_RENDERERS`` after JSON, so
``?format=json`` and no format still answer JSON; any other value is a 400 naming ``format``.
The renderers only choose: the rows are streamed by ``export_response``
(``StreamingHttpResponse``) and never pass through DRF's ``render``, which writes only the
errors, as JSON.

- CSV: a header of the JSON field names, then the rows as PostgreSQL's COPY writes them
  (``trading.selectors.exports``: exact decimal text, ISO-8601 UTC times, NULL an empty field).
- Parquet: the same COPY text read by Arrow's CSV reader, typed by the model (a decimal as
  ``decimal128(p, s)`` of its ``numeric(p, s)``, a time as ``timestamp[us, UTC]``, JSON as its
  text) and written by ``pyarrow.parquet`` a row group at a time.

An export holds every row the filters select, in the list's order (newest first); ``cursor``
and ``page_size`` do not apply.
"""

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_basic_type, build_parameter_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from atb_site import progress
from trading.api.errors import FieldError, InvalidInput
from trading.selectors.exports import ExportColumn, export_csv_chunks

CSV_MEDIA_TYPE = "text/csv"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
# CSV text per Parquet row group: about 12,000 trades.
PARQUET_BLOCK_BYTES = 4 << 20


class _ExportRenderer(BaseRenderer):
    """Chosen by negotiation; an export's rows never come here (``export_response`` streams
    them), only an error's body, which is written as JSON."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data, "application/json", renderer_context)


class CSVRenderer(_ExportRenderer):
    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"


class ParquetRenderer(_ExportRenderer):
    media_type = PARQUET_MEDIA_TYPE
    format = "parquet"
    charset = None


EXPORT_RENDERERS: list[type[BaseRenderer]] = [JSONRenderer, CSVRenderer, ParquetRenderer]
EXPORT_FORMATS = ("csv", "parquet")
FORMAT_HELP = (
    "`json` (the default), or an export of every row the filters select, in this order, "
    "streamed: `csv` (a header of the JSON names; decimals as exact text, times ISO-8601 UTC, "
    "null an empty field) or `parquet` (decimal128 with each column's precision and scale, "
    "timestamps in UTC). `cursor` and `page_size` do not apply to an export."
)


class ExportNegotiation(DefaultContentNegotiation):
    """DRF's, but a ``format`` it cannot serve is a 400 naming it (DRF: a bare 404)."""

    def filter_renderers(
        self, renderers: Iterable[BaseRenderer], format: str
    ) -> list[BaseRenderer]:
        found = [r for r in renderers if r.format == format]
        if not found:
            formats = ", ".join(str(r.format) for r in renderers)
            raise InvalidInput([FieldError("format", f"must be one of {formats}")])
        return found


class ExportAutoSchema(AutoSchema):
    """Documents ``format`` and the export media types as text (CSV) and binary (Parquet)."""

    def _get_format_parameters(self) -> list[dict[str, Any]]:
        return [
            build_parameter_type(
                name="format",
                schema=build_basic_type(OpenApiTypes.STR),  # type: ignore[arg-type]
                location=OpenApiParameter.QUERY,
                enum=["json", *EXPORT_FORMATS],
                description=FORMAT_HELP,
            )
        ]

    def _get_response_for_code(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = super()._get_response_for_code(*args, **kwargs)
        content = response.get("content", {})
        if CSV_MEDIA_TYPE in content:
            content[CSV_MEDIA_TYPE] = {"schema": {"type": "string"}}
        if PARQUET_MEDIA_TYPE in content:
            content[PARQUET_MEDIA_TYPE] = {"schema": {"type": "string", "format": "binary"}}
        return response


class Exportable(APIView):
    """Mixed into an API view: JSON, CSV and Parquet by ``?format=``."""

    renderer_classes = EXPORT_RENDERERS
    content_negotiation_class = ExportNegotiation
    schema = ExportAutoSchema()

    @staticmethod
    def export_format(request: Any) -> str | None:
        fmt = getattr(getattr(request, "accepted_renderer", None), "format", None)
        return fmt if fmt in EXPORT_FORMATS else None


# --- Arrow types ------------------------------------------------------------------------------


def arrow_type(column: ExportColumn) -> Any:
    if column.kind == "decimal":
        return pa.decimal128(column.digits, column.places)
    return {
        "datetime": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "integer": pa.int64(),
        "boolean": pa.bool_(),
        "float": pa.float64(),
    }.get(column.kind, pa.string())


def arrow_schema(columns: Sequence[ExportColumn]) -> Any:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


# --- Streams ----------------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A file Parquet is written to, emptied after each row group."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def parquet_from_csv(
    csv_chunks: Iterator[bytes], columns: Sequence[ExportColumn], *, block_bytes: int
) -> Iterator[bytes]:
    """Parquet bytes from CSV rows (no header; each chunk whole rows) written as
    ``trading.selectors.exports`` writes them: about ``block_bytes`` of CSV become one row
    group, read by Arrow in this thread (a reader pulling from the chunks in Arrow's own I/O
    threads would read the database through another connection)."""
    schema = arrow_schema(columns)
    read_options = pa_csv.ReadOptions(
        column_names=[c.name for c in columns], use_threads=False, block_size=block_bytes + 1024
    )
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=schema,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["true"],
        false_values=["false"],
    )
    sink = _Sink()
    pool = pa.default_memory_pool()

    def row_group(block: list[bytes]) -> Any:
        return pa_csv.read_csv(
            pa.py_buffer(b"".join(block)),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )

    with pq.ParquetWriter(sink, schema) as writer:
        block: list[bytes] = []
        size = 0
        for chunk in csv_chunks:
            block.append(chunk)
            size += len(chunk)
            if size >= block_bytes:
                table = row_group(block)
                block, size = [], 0
                writer.write_table(table, row_group_size=table.num_rows)
                del table
                pool.release_unused()  # hand the row group's buffers back: memory stays flat
                yield sink.drain()
        if block:
            table = row_group(block)
            writer.write_table(table, row_group_size=table.num_rows)
    yield sink.drain()


def _csv_header(columns: Sequence[ExportColumn]) -> bytes:
    return (",".join(c.name for c in columns) + "\n").encode()


def _beating(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        progress.beat()  # sending for longer than the server's timeout is not being stuck
        yield chunk


def _streamed(chunks: Iterable[bytes], fmt: str, name: str) -> StreamingHttpResponse:
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    media = CSV_MEDIA_TYPE + "; charset=utf-8" if fmt == "csv" else PARQUET_MEDIA_TYPE
    response = StreamingHttpResponse(_beating(chunks), content_type=media)
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


def export_response(
    queryset: QuerySet[Any],
    columns: Sequence[ExportColumn],
    *,
    ordering: Sequence[str],
    fmt: str,
    name: str,
    block_bytes: int = PARQUET_BLOCK_BYTES,
) -> StreamingHttpResponse:
    """``queryset``'s rows, streamed as ``fmt`` (csv or parquet). Nothing is read before the
    answer is iterated; the database is the queryset's as chosen now (a staff read's replica)."""
    alias = queryset.db

    def rows() -> Iterator[bytes]:
        return export_csv_chunks(queryset, columns, ordering=ordering, alias=alias)

    if fmt == "csv":
        return _streamed(_chained(_csv_header(columns), rows), fmt, name)
    return _streamed(
        _later(lambda: parquet_from_csv(rows(), columns, block_bytes=block_bytes)), fmt, name
    )


def _chained(first: bytes, rest: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    yield first
    yield from rest()


def _later(make: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    yield from make()


# --- Rows computed in Python (the analytics reads: a few hundred rows) ------------------------


def _csv_cell(value: Any) -> str:
    """A value as CSV: None an empty field, empty text ``""`` (as COPY writes them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")  # its exact text, never an exponent (0E-8)
    else:
        text = str(value)  # a date, an int, text
    if text == "" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def serializer_columns(serializer_class: type[serializers.Serializer]) -> list[ExportColumn]:
    """The columns of an output serializer's fields, typed by them (a DecimalField's digits
    and places)."""
    columns = []
    for name, field in serializer_class().get_fields().items():
        if isinstance(field, serializers.DecimalField):
            columns.append(
                ExportColumn(name, name, "decimal", field.max_digits, field.decimal_places)
            )
            continue
        kind = "text"
        for drf_type, drf_kind in _DRF_KINDS:
            if isinstance(field, drf_type):
                kind = drf_kind
                break
        columns.append(ExportColumn(name, name, kind))
    return columns


_DRF_KINDS: tuple[tuple[type[serializers.Field], str], ...] = (
    (serializers.BooleanField, "boolean"),
    (serializers.IntegerField, "integer"),
    (serializers.FloatField, "float"),
    (serializers.DateTimeField, "datetime"),
    (serializers.DateField, "date"),
)


def rows_response(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[ExportColumn], *, fmt: str, name: str
) -> StreamingHttpResponse:
    """Rows a selector computed (dicts), as ``fmt``: decimals as their exact text (CSV) or
    decimal128 (Parquet), a date ISO-8601, a float as Python's repr (JSON's number)."""
    names = [c.name for c in columns]
    if fmt == "parquet":
        schema = arrow_schema(columns)
        table = pa.table({n: [row[n] for row in rows] for n in names}, schema=schema)
        sink = _Sink()
        with pq.ParquetWriter(sink, schema) as writer:
            writer.write_table(table)
        return _streamed(iter([sink.drain()]), fmt, name)
    lines = [",".join(names)]
    lines.extend(",".join(_csv_cell(row[n]) for n in names) for row in rows)
    return _streamed(iter([("\n".join(lines) + "\n").encode()]), fmt, name)
