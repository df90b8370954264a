"""Tables as columns of numpy arrays, written out as binary COPY a chunk at a time.

Binary COPY spares PostgreSQL parsing text (numerics and timestamps above all), and numpy builds
it without a Python step per value: each field becomes a block of bytes for every row of the
chunk at once, and the blocks are scattered into the rows' places in one buffer.

Numbers are whole numbers of a fixed scale (``Column(kind="e4")``: value x 10^-4), so no float
ever meets a price; they go out as NUMERIC's own base-10000 digits (five of them, weight 2:
up to 10^12 with eight places), which PostgreSQL normalizes and rounds to the column's scale
as it would the same number in text.
"""

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK_ROWS = 100_000
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
NUMERIC_DIGITS = 5  # base-10000 digits, weights 2 to -2
NUMERIC_SCALE = 8
NUMERIC_NEG = 0x4000


Lazy = Callable[[int, int], Any]  # the rows [start, stop) of a column, made when they are sent


@dataclass(frozen=True)
class Column:
    name: str
    # int / eN: an integer array (eN: value x 10^-N); ts: microseconds since the Unix epoch
    # (int64, UTC); text: a list or object array of str; const: one str for every row. Or a
    # function of (start, stop) giving those rows' values: made a chunk at a time, so a large
    # table's strings (or all of its values) never exist at once.
    values: Any
    kind: str = "int"
    null: np.ndarray | Lazy | None = None  # True where the value is NULL


@dataclass
class Chunks:
    """Columns made together a chunk at a time by ``make(start, stop)`` (name -> values): each
    column's ``values`` is ``chunks("name")``; the chunk is made once for all of them."""

    make: Callable[[int, int], dict[str, Any]]
    _key: tuple[int, int] | None = None
    _made: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self, name: str) -> Lazy:
        def values(start: int, stop: int) -> Any:
            if self._key != (start, stop):
                self._made, self._key = {}, None  # the last chunk's arrays go first
                self._made, self._key = self.make(start, stop), (start, stop)
            return self._made[name]

        return values


def row_ids(start: int, stop: int) -> np.ndarray:
    """The ids 1, 2, ... of rows [start, stop)."""
    return np.arange(start + 1, stop + 1, dtype=np.int64)


@dataclass(frozen=True)
class Field:
    """One column of a chunk, encoded: each row's byte length (-1: NULL) and all bytes."""

    lengths: np.ndarray  # int64 per row
    payload: np.ndarray  # uint8, the non-NULL values one after the other
    width: int | None  # every row's length when all are equal and none is NULL


def _fixed(block: np.ndarray) -> Field:
    rows, width = block.shape
    return Field(np.full(rows, width, np.int64), np.ascontiguousarray(block).reshape(-1), width)


def _big_endian(values: np.ndarray, dtype: str) -> Field:
    block = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(len(values), -1)
    return _fixed(block)


def _numeric(values: np.ndarray, exp: int) -> Field:
    v = values.astype(np.int64)
    magnitude = np.abs(v) * 10 ** (NUMERIC_SCALE - exp)
    rows = len(v)
    words = np.empty((rows, 4 + NUMERIC_DIGITS), dtype=">i2")
    words[:, 0] = NUMERIC_DIGITS
    words[:, 1] = NUMERIC_DIGITS - 3  # the first digit's weight (10000^2)
    words[:, 2] = np.where(v < 0, NUMERIC_NEG, 0)
    words[:, 3] = NUMERIC_SCALE
    for k in range(NUMERIC_DIGITS):
        words[:, 3 + NUMERIC_DIGITS - k] = magnitude // 10_000**k % 10_000
    return _fixed(words.view(np.uint8).reshape(rows, -1))


def _texts(texts: list[str], prefix: str = "") -> Field:
    if prefix:
        texts = [prefix + t for t in texts]
    encoded = "".join(texts).encode()
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    if len(encoded) != int(lengths.sum()):  # not all ASCII: count bytes, not characters
        parts = [t.encode() for t in texts]
        lengths = np.fromiter(map(len, parts), np.int64, len(parts))
        encoded = b"".join(parts)
    return Field(lengths, np.frombuffer(encoded, np.uint8), None)


def _const(value: bytes, rows: int) -> Field:
    block = np.tile(np.frombuffer(value, np.uint8), (rows, 1)) if value else np.empty((rows, 0))
    return _fixed(block.astype(np.uint8))


def encode(column: Column, pg_type: str, start: int, stop: int) -> Field:
    """The chunk [start, stop) of ``column`` as the binary values of ``pg_type``."""
    kind, rows = column.kind, stop - start
    if callable(column.values):
        values = column.values(start, stop)
    else:
        values = column.values if kind == "const" else column.values[start:stop]
    if pg_type in ("bigint", "integer"):
        dtype = ">i8" if pg_type == "bigint" else ">i4"
        field = (
            _const(np.array(int(values), dtype).tobytes(), rows)
            if kind == "const"
            else (_big_endian(np.asarray(values), dtype))
        )
    elif pg_type == "numeric":
        if kind == "const":
            field = _numeric(np.full(rows, int(values)), 0)
        else:
            field = _numeric(np.asarray(values), int(kind[1:]) if kind.startswith("e") else 0)
    elif pg_type == "timestamp with time zone":
        if kind != "ts":
            raise ValueError(f"{column.name}: timestamps must be microseconds (kind ts)")
        field = _big_endian(np.asarray(values, np.int64) - PG_EPOCH_US, ">i8")
    elif pg_type in ("text", "jsonb") or pg_type.startswith("character varying"):
        prefix = "\x01" if pg_type == "jsonb" else ""  # jsonb's binary format version
        if kind == "const":
            field = _const((prefix + str(values)).encode(), rows)
        elif kind == "text":
            field = _texts(list(values), prefix)
        else:
            field = _texts(list(map(str, np.asarray(values).tolist())), prefix)
    else:
        raise ValueError(f"{column.name}: no binary encoder for {pg_type}")
    if column.null is None:
        return field
    null = column.null(start, stop) if callable(column.null) else column.null[start:stop]
    if not null.any():
        return field
    keep = np.repeat(~null, field.lengths)
    return Field(np.where(null, -1, field.lengths), field.payload[keep], None)


def _scatter(buffer: np.ndarray, at: np.ndarray, field: Field) -> None:
    """Write each row's bytes of ``field`` at ``at`` (one offset per row)."""
    if field.width is not None:
        if field.width:
            index = at[:, None] + np.arange(field.width)
            buffer[index] = field.payload.reshape(len(at), field.width)
        return
    sizes = np.maximum(field.lengths, 0)
    if not len(field.payload):
        return
    sources = np.cumsum(sizes) - sizes
    buffer[np.repeat(at - sources, sizes) + np.arange(len(field.payload))] = field.payload


def binary_rows(fields: list[Field]) -> bytes:
    """Rows of binary COPY: per row the field count, then per field its length and bytes."""
    rows = len(fields[0].lengths)
    sizes = np.full(rows, 2, np.int64)
    for field in fields:
        sizes += 4 + np.maximum(field.lengths, 0)
    starts = np.cumsum(sizes) - sizes
    buffer = np.empty(int(sizes.sum()), np.uint8)
    count = np.array([len(fields)], ">i2").view(np.uint8)
    buffer[starts[:, None] + np.arange(2)] = count
    at = starts + 2
    for field in fields:
        header = field.lengths.astype(">i4").view(np.uint8).reshape(rows, 4)
        buffer[at[:, None] + np.arange(4)] = header
        at = at + 4
        _scatter(buffer, at, field)
        at = at + np.maximum(field.lengths, 0)
    return buffer.tobytes()


@dataclass(frozen=True)
class Table:
    name: str  # schema-qualified
    rows: int
    columns: tuple[Column, ...]

    @property
    def copy_sql(self) -> str:
        names = ", ".join(c.name for c in self.columns)
        return f"COPY {self.name} ({names}) FROM STDIN WITH (FORMAT BINARY, FREEZE)"

    def chunks(self, pg_types: dict[str, str], size: int = CHUNK_ROWS) -> Iterator[bytes]:
        """The table as binary COPY data, ``size`` rows at a time; ``pg_types`` maps each
        column to its PostgreSQL type (``format_type``)."""
        yield SIGNATURE
        for start in range(0, self.rows, size):
            stop = min(start + size, self.rows)
            yield binary_rows([encode(c, pg_types[c.name], start, stop) for c in self.columns])
        yield TRAILER


def pick(options: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """``options[code]`` for every code, as an object array of str."""
    return np.array(options, dtype=object)[codes]
