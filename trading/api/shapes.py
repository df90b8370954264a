"""Input shapes: one declaration gives a fast validator for batches and the OpenAPI schema.

Ingestion is the hot path: a per-row ModelSerializer costs ~100 µs a row. A ``Shape`` checks a
plain dict field by field in a tight loop, collects every error with its item index, and
yields clean rows ready for one set-based statement. ``Shape.serializer()`` builds the matching
DRF serializer, used only to document the body in the OpenAPI schema.
"""

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from rest_framework import serializers

from trading.api.errors import FieldError, InvalidInput
from trading.api.parsers import RefusedArray, RefusedObject

_MISSING = object()
_REQUIRED = object()  # a missing field's fate in Shape's plan: "is required"

# Levels of objects and arrays a JSON field may nest, its own object or array the first. Deeper
# values are refused: rendering them exhausts Python's stack (API.md, README "The API").
JSON_MAX_DEPTH = 32


class Invalid(Exception):
    """A field's value is refused; the message is the reason."""


@dataclass(frozen=True)
class F:
    """One field of an input shape."""

    kind: str  # decimal, str, choice, datetime, bool, int, object, list
    required: bool = True
    null: bool = False
    default: Any = _MISSING
    max_digits: int = 0
    places: int = 0
    gt: Decimal | None = None
    ge: Decimal | None = None
    max_length: int = 0
    choices: Sequence[str] = ()
    min_value: int | None = None
    ident: bool = False  # names a row or a market: printable characters only, no edge spaces
    help: str = ""

    # --- the validators, one per kind ---------------------------------------------------------

    def parse(self, value: Any) -> Any:
        if value is None:
            if self.null:
                return None
            raise Invalid("may not be null")
        return _PARSERS[self.kind](self, value)


_DECIMAL_INPUT = (int, Decimal, str)  # a tuple: isinstance on an ``int | ...`` union is slower


@functools.cache
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


# A decimal as text: ASCII digits with an optional sign, point and exponent, and spaces around.
# Decimal() alone also reads "1_000", "١٢٣" (any script's digits), "NaN" and "Infinity".
_PLAIN_DECIMAL = re.compile(r" *[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)? *")


def _decimal(f: F, value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:  # what the parser makes of a number with a fraction: taken as is
        number = value
    elif kind is str:  # a decimal string, as many bots send money
        number = _decimal_text(value)
    else:
        number = _to_decimal(value)
    if not number.is_finite():
        raise Invalid("must be a finite number")
    if number.adjusted() >= f.max_digits - f.places:
        raise Invalid(f"must have at most {f.max_digits - f.places} digits before the point")
    # Round half-even to the column's scale (like the legacy importers), never through a float.
    number = number.quantize(_quantum(f.places), rounding=ROUND_HALF_EVEN)
    if number.adjusted() >= f.max_digits - f.places:  # 99.99999999999 rounds up a digit
        raise Invalid(f"must have at most {f.max_digits - f.places} digits before the point")
    if f.gt is not None and not number > f.gt:
        raise Invalid(f"must be greater than {f.gt}")
    if f.ge is not None and not number >= f.ge:
        raise Invalid(f"must be at least {f.ge}")
    return number


def _decimal_text(value: str) -> Decimal:
    if _PLAIN_DECIMAL.fullmatch(value) is None:
        raise Invalid(f"{value!r} is not a decimal number")
    try:
        return Decimal(value.strip())
    except InvalidOperation as exc:
        raise Invalid(f"{value!r} is not a decimal number") from exc


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, _DECIMAL_INPUT):
        raise Invalid("must be a number or a decimal string")
    if isinstance(value, str):  # a subclass of str
        return _decimal_text(value)
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise Invalid(f"{value!r} is not a decimal number") from exc


def _str(f: F, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a string")
    if f.required and f.default is _MISSING and not value.strip():
        raise Invalid("may not be blank")
    if f.max_length and len(value) > f.max_length:
        raise Invalid(f"must be at most {f.max_length} characters")
    if "\x00" in value:
        raise Invalid("may not contain NUL characters")
    if f.ident and value:
        identifier_problem = _identifier_problem(value)
        if identifier_problem is not None:
            raise Invalid(identifier_problem)
    return value


def _identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot name a row or a market, or None. str.isprintable() is false for
    controls (tab, newline, DEL), format characters (zero-width space and joiners, byte order
    mark, bidirectional marks, embeddings, overrides and isolates), separators other than the
    ASCII space, surrogates, private-use and unassigned code points: anything that would make
    "BTC/USDT" and a string that looks the same two markets."""
    if not value.isprintable():
        return "may not contain control, zero-width, bidirectional or other invisible characters"
    if value[0] == " " or value[-1] == " ":
        return "may not begin or end with a space"
    return None


def is_identifier(value: str) -> bool:
    """Whether ``value`` (not empty, without NUL) may name a row or a market."""
    return _identifier_problem(value) is None


def _choice(f: F, value: Any) -> str:
    if not isinstance(value, str) or value not in f.choices:
        raise Invalid(f"must be one of: {', '.join(f.choices)}")
    return value


def _datetime(f: F, value: Any) -> datetime:
    if not isinstance(value, str):
        raise Invalid("must be an ISO-8601 date-time string")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(f"{value!r} is not an ISO-8601 date-time") from exc
    if moment.tzinfo is None:
        raise Invalid("must carry a UTC offset (e.g. 'Z' or '+00:00')")
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 has no UTC time
        in_utc = None
    if in_utc is None or not 1970 <= in_utc.year <= 9998:
        raise Invalid("must be between 1970 and 9998")
    return in_utc


def _bool(f: F, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def _int(f: F, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("must be an integer")
    if f.min_value is not None and value < f.min_value:
        raise Invalid(f"must be at least {f.min_value}")
    if value > 2**31 - 1:
        raise Invalid("is too large")
    return value


def _object(f: F, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object")
    if type(value) is RefusedObject:  # a NUL or a number jsonb cannot hold (parsers.py)
        raise Invalid(value.reason)
    if not nests_within_limit(value):
        raise Invalid(_TOO_DEEP)
    return value


def _list(f: F, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid("must be a JSON array")
    if type(value) is RefusedArray:
        raise Invalid(value.reason)
    if not nests_within_limit(value):
        raise Invalid(_TOO_DEEP)
    return value


def nests_within_limit(value: dict[str, Any] | list[Any]) -> bool:
    """Whether a JSON object or array nests at most JSON_MAX_DEPTH levels, itself the first."""
    if not value:
        return True
    return _nests_within(value.values() if type(value) is dict else value, JSON_MAX_DEPTH - 1)


_TOO_DEEP = f"nests deeper than {JSON_MAX_DEPTH} levels of objects and arrays"


def _nests_within(children: Iterable[Any], levels: int) -> bool:
    """Whether no object or array among ``children`` nests more than ``levels`` levels. Only
    containers are descended into, at most JSON_MAX_DEPTH calls deep."""
    for child in children:
        kind = type(child)
        if kind is dict:
            if levels == 0 or not _nests_within(child.values(), levels - 1):
                return False
        elif kind is list and (levels == 0 or not _nests_within(child, levels - 1)):
            return False
    return True


_PARSERS: dict[str, Callable[[F, Any], Any]] = {
    "decimal": _decimal,
    "str": _str,
    "choice": _choice,
    "datetime": _datetime,
    "bool": _bool,
    "int": _int,
    "object": _object,
    "list": _list,
}

Rule = Callable[[dict[str, Any]], list[tuple[str | None, str]]]


@dataclass
class Shape:
    """The fields of one input item, rules across fields, and fields the server owns."""

    name: str
    fields: dict[str, F]
    rules: list[Rule] = field(default_factory=list)
    server_owned: tuple[str, ...] = ("id", "created_at", "updated_at")
    # The field a repeated natural key is reported on (the key's first field).
    key_field: str | None = None

    def __post_init__(self) -> None:
        # What clean walks per item, worked out once: each field's name, spec and validator (a
        # call less per field than F.parse), what a missing field becomes, and the set of names.
        self._plan = [
            (name, spec, _PARSERS[spec.kind], self._if_missing(spec))
            for name, spec in self.fields.items()
        ]
        self._names = frozenset(self.fields)

    @staticmethod
    def _if_missing(spec: F) -> Any:
        if spec.default is not _MISSING:
            return spec.default
        return _REQUIRED if spec.required else None if spec.null else _MISSING

    def clean(
        self, item: Any, index: int | None = None, memo: dict[str, dict[str, Any]] | None = None
    ) -> tuple[dict[str, Any], list[FieldError]]:
        """``item`` checked field by field: the clean row and every error. ``memo`` (per field,
        a text value's clean value) lets a batch check each text once: a batch repeats its
        symbols, sides, amounts and tags from item to item. Clean values are immutable (text,
        Decimal, datetime), so items share them; a refused value is never kept."""
        if not isinstance(item, dict):
            return {}, [FieldError("body", "must be a JSON object", index)]
        errors: list[FieldError] = []
        row: dict[str, Any] = {}
        if not self._names.issuperset(item):
            for key in item:
                if key not in self.fields:
                    reason = "is set by the server" if key in self.server_owned else "unknown field"
                    errors.append(FieldError(key, reason, index))
        get = item.get
        for name, spec, parse, if_missing in self._plan:
            value = get(name, _MISSING)
            if value is _MISSING:
                if if_missing is _REQUIRED:
                    errors.append(FieldError(name, "is required", index))
                elif if_missing is not _MISSING:
                    row[name] = if_missing() if callable(if_missing) else if_missing
                continue
            if value is None:
                if spec.null:
                    row[name] = None
                else:
                    errors.append(FieldError(name, "may not be null", index))
                continue
            if memo is not None and type(value) is str:
                seen = memo[name]
                clean = seen.get(value, _MISSING)
                if clean is not _MISSING:
                    row[name] = clean
                    continue
                try:
                    row[name] = seen[value] = parse(spec, value)
                except Invalid as exc:
                    errors.append(FieldError(name, str(exc), index))
                continue
            try:
                row[name] = parse(spec, value)
            except Invalid as exc:
                errors.append(FieldError(name, str(exc), index))
        if not errors:
            for rule in self.rules:
                errors.extend(FieldError(f, reason, index) for f, reason in rule(row))
        return row, errors

    def clean_one(self, item: Any) -> dict[str, Any]:
        row, errors = self.clean(item)
        if errors:
            raise InvalidInput(errors)
        return row

    def clean_path(self, name: str, value: str) -> Any:
        """A URL's path parameter checked as this shape's field of the same name (an identifier
        in the URL is held to what it is held to in a body): a 400 naming it."""
        try:
            return self.fields[name].parse(value)
        except Invalid as exc:
            raise InvalidInput([FieldError(name, str(exc))]) from exc

    def clean_many(
        self, items: Iterable[Any], *, key: Callable[[dict[str, Any]], Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item cleaned, or InvalidInput naming every bad item (nothing is written).

        ``key`` names an item's natural key; a key seen twice in one batch is an error.
        """
        rows: list[dict[str, Any]] = []
        errors: list[FieldError] = []
        seen: dict[Any, int] = {}
        memo: dict[str, dict[str, Any]] = {name: {} for name in self.fields}
        for index, item in enumerate(items):
            row, item_errors = self.clean(item, index, memo)
            if not item_errors and key is not None:
                natural = key(row)
                if natural in seen:
                    item_errors.append(
                        FieldError(
                            self.key_field or "body",
                            f"repeats the key of item {seen[natural]} in this batch",
                            index,
                        )
                    )
                else:
                    seen[natural] = index
            errors.extend(item_errors)
            rows.append(row)
        if errors:
            raise InvalidInput(errors, batch=True)
        return rows

    # --- OpenAPI --------------------------------------------------------------------------------

    def serializer(self) -> type[serializers.Serializer]:
        """A DRF serializer with the same fields, for the schema only (never used to validate)."""
        attrs: dict[str, Any] = {}
        for name, spec in self.fields.items():
            common: dict[str, Any] = {
                "required": spec.required and spec.default is _MISSING,
                "allow_null": spec.null,
                "help_text": spec.help or None,
            }
            if spec.kind == "decimal":
                attrs[name] = serializers.DecimalField(
                    max_digits=spec.max_digits, decimal_places=spec.places, **common
                )
            elif spec.kind == "str":
                attrs[name] = serializers.CharField(
                    max_length=spec.max_length or None, allow_blank=not spec.required, **common
                )
            elif spec.kind == "choice":
                attrs[name] = serializers.ChoiceField(choices=list(spec.choices), **common)
            elif spec.kind == "datetime":
                attrs[name] = serializers.DateTimeField(**common)
            elif spec.kind == "bool":
                attrs[name] = serializers.BooleanField(**common)
            elif spec.kind == "int":
                attrs[name] = serializers.IntegerField(min_value=spec.min_value, **common)
            elif spec.kind == "object":
                attrs[name] = serializers.DictField(**common)
            else:
                attrs[name] = serializers.ListField(**common)
        return type(f"{self.name}InputSerializer", (serializers.Serializer,), attrs)


# --- Field helpers matching SCHEMA.md's precisions ----------------------------------------------


def quantity(**kw: Any) -> F:
    return F("decimal", max_digits=28, places=10, **kw)


def usd(**kw: Any) -> F:
    return F("decimal", max_digits=20, places=8, **kw)


def pct(**kw: Any) -> F:
    return F("decimal", max_digits=12, places=6, **kw)


def text(max_length: int, **kw: Any) -> F:
    return F("str", max_length=max_length, **kw)


def ident(max_length: int, **kw: Any) -> F:
    """Text that names a row or a market (symbol, exchange, trade_id...): printable only."""
    return F("str", max_length=max_length, ident=True, **kw)


def choice(values: Sequence[str], **kw: Any) -> F:
    return F("choice", choices=tuple(values), **kw)


def moment(**kw: Any) -> F:
    return F("datetime", **kw)


def run_ref() -> F:
    """A row's run (trading.bot_runs), named explicitly; by default the bot's open run."""
    return F(
        "int",
        required=False,
        null=True,
        min_value=1,
        help="Optional: the id of one of the bot's runs. By default, its open run (if any).",
    )
