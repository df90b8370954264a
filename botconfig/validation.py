"""What a configuration version must be before it can be put in force.

Three checks, each naming the key and the reason (``risk.stop_loss_pct: must be > 0 (got -5)``):

- a value JSON fields refuse everywhere (``trading.jsonvalues``): nested deeper than the API's
  JSON_MAX_DEPTH, or holding a lone surrogate, is refused before anything else looks at it;
- the strategy type's JSON Schema (``config.strategy_schemas``; the ``default`` row serves a
  type without one), which staff edit as data;
- the risk limits, in code: ``risk.max_*`` are the one source of the bot's limit columns
  (``trading.bots.max_*``, read by the risk check), so whatever a staff-edited schema says,
  a limit must be a positive number that fits its column.
"""

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from jsonschema import exceptions as schema_exceptions
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from botconfig.models import StrategySchema
from botconfig.schemas import repository_schemas
from trading.jsonvalues import json_refused
from trading.models import Bot

# The configuration's risk keys that are the bot's limit columns (same names).
LIMIT_KEYS = (
    "max_position_size_usd",
    "max_daily_loss_usd",
    "max_drawdown_pct",
    "max_leverage",
    "max_open_positions",
)
_TYPE_NAMES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "object": "an object",
    "array": "a list",
    "boolean": "true or false",
    "null": "null",
}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def shown(value: Any) -> str:
    """A value as the refusal quotes it: text in quotes, the rest as JSON."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _messages(error: schema_exceptions.ValidationError) -> list[str]:
    path = ".".join(str(part) for part in error.absolute_path)
    name = path or "(the configuration)"
    kind, got = error.validator, error.instance
    rule: Any = error.validator_value  # what the schema asked (the keyword's value)

    def at(key: Any) -> str:
        return f"{path}.{key}" if path else str(key)

    if kind == "required" and isinstance(got, dict):
        return [f"{at(key)}: required" for key in rule if key not in got]
    if kind == "type":
        kinds = [rule] if isinstance(rule, str) else list(rule)
        expected = " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)
        return [f"{name}: must be {expected} (got {shown(got)})"]
    if kind in _BOUNDS:
        return [f"{name}: must be {_BOUNDS[kind]} {shown(rule)} (got {shown(got)})"]
    if kind == "enum":
        return [f"{name}: must be one of {', '.join(shown(v) for v in rule)} (got {shown(got)})"]
    return [f"{name}: {error.message}"]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def schema_check(document: Any) -> None:
    """Raise ValidationError unless ``document`` is a valid JSON Schema whose references all
    point inside it (nothing is fetched from elsewhere)."""
    if not isinstance(document, dict):
        raise ValidationError("Not a valid JSON Schema: a schema here is a JSON object.")
    refused = json_refused(document, whole="it")
    if refused is not None:
        raise ValidationError(f"Not a valid JSON Schema: {refused}")
    try:
        validator_for(document).check_schema(document)
    except schema_exceptions.SchemaError as exc:
        raise ValidationError(f"Not a valid JSON Schema: {exc.message}") from exc
    resolver = (
        Registry().with_resource("", Resource.from_contents(document, DRAFT202012)).resolver()
    )
    for ref in _refs(document):
        try:
            if not ref.startswith("#"):
                raise Unresolvable(ref)
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise ValidationError(
                f"Not a valid JSON Schema: {ref!r} does not point inside this schema."
            ) from exc


def schema_errors(*, document: dict[str, Any], config: Any) -> list[str]:
    """Every way ``config`` fails ``document`` (a checked schema), sorted by key."""
    validator = validator_for(document)(document)
    try:
        found = {m for error in validator.iter_errors(config) for m in _messages(error)}
    except Unresolvable as exc:  # a schema stored before schema_check looked at references
        return [f"(the schema): cannot be applied: {exc}"]
    return sorted(found)


def _limit(name: str, value: Any) -> tuple[Decimal | int | None, str | None]:
    """The column value of ``risk.<name>``, or why it cannot be one."""
    key = f"risk.{name}"
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{key}: must be a number (got {shown(value)})"
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"{key}: must be a finite number (got {shown(value)})"
    if name == "max_open_positions":
        if value != int(value) or not 0 <= value <= 2**31 - 1:
            return None, f"{key}: must be a whole number from 0 (got {shown(value)})"
        return int(value), None
    field = Bot._meta.get_field(name)
    if not isinstance(field, models.DecimalField):
        raise TypeError(f"trading.bots.{name} is not a NUMERIC column")
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-field.decimal_places))
    if name == "max_drawdown_pct":
        ceiling, bound = Decimal(100), "<= 100"
    else:  # what NUMERIC(p, s) holds
        ceiling = Decimal(10) ** (field.max_digits - field.decimal_places)
        bound = f"< {ceiling}"
    if not 0 < number <= ceiling or (number == ceiling and name != "max_drawdown_pct"):
        return None, f"{key}: must be > 0 and {bound} (got {shown(value)})"
    return number, None


def limits_of(config: Any) -> tuple[dict[str, Decimal | int | None], list[str]]:
    """The bot's limit columns as ``config`` sets them (a key left out: no limit), and the
    refusals of limits that cannot be columns."""
    risk = config.get("risk") if isinstance(config, dict) else None
    risk = risk if isinstance(risk, dict) else {}
    limits: dict[str, Decimal | int | None] = {}
    errors = []
    for name in LIMIT_KEYS:
        limits[name], error = _limit(name, risk.get(name))
        if error:
            errors.append(error)
    return limits, errors


def schema_for(strategy_type: str, *, lock: bool = False) -> StrategySchema | None:
    """The strategy type's schema, else the default one. ``lock`` (inside a transaction that
    writes a version): hold the rows until commit, so a schema edit waits for this version, or
    this version for the edit, and a version is never put in force against a schema being
    replaced. A table without the default schema (emptied, as a test database is between
    tests) gets the repository's schemas first."""
    found = StrategySchema.objects.filter(strategy_type__in=[strategy_type, StrategySchema.DEFAULT])
    if lock:
        found = found.select_for_update(no_key=True)
    by_type = {schema.strategy_type: schema for schema in found.order_by("id")}
    if StrategySchema.DEFAULT not in by_type:
        StrategySchema.objects.bulk_create(
            [StrategySchema(strategy_type=t, schema=d) for t, d in repository_schemas().items()],
            ignore_conflicts=True,
        )
        by_type = {schema.strategy_type: schema for schema in found.order_by("id")}
    return by_type.get(strategy_type) or by_type.get(StrategySchema.DEFAULT)


def config_errors(
    *, strategy_type: str, config: Any, lock: bool = False
) -> tuple[StrategySchema | None, list[str]]:
    """The schema ``config`` is checked against, and every refusal (empty: it may go in force)."""
    if not isinstance(config, dict):
        return None, ["A configuration is a JSON object."]
    refused = json_refused(config, whole="(the configuration):")
    if refused is not None:  # what the schema check and the database would choke on
        return None, [refused]
    schema = schema_for(strategy_type, lock=lock)
    errors = [] if schema is None else schema_errors(document=schema.schema, config=config)
    keys = {error.split(":", 1)[0] for error in errors}
    errors += [e for e in limits_of(config)[1] if e.split(":", 1)[0] not in keys]
    return schema, sorted(errors)
