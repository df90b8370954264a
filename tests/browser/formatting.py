"""The text the dashboard shows for an API value: static/dashboard/format.js, rule by rule.

Decimal strings are rounded as decimals (half away from zero); JSON numbers are rounded from
their exact binary value the same way, which is what JavaScript's Number#toFixed does.
"""

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

DASH = "\u2014"


def _group(digits: str) -> str:
    return f"{int(digits):,}"


def _decimal(raw: str | float | int, places: int) -> str:
    value = Decimal(raw) if isinstance(raw, str) else Decimal(float(raw))
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)
    text = format(abs(rounded), "f")
    head, _, tail = text.partition(".")
    return ("-" if rounded < 0 else "") + _group(head) + (f".{tail}" if places else "")


def _trimmed(raw: str | float | int) -> str:
    value = Decimal(raw) if isinstance(raw, str) else Decimal(repr(raw))
    text = format(abs(value), "f")
    head, _, tail = text.partition(".")
    tail = tail.rstrip("0")
    negative = value < 0 and value != 0
    return ("-" if negative else "") + _group(head) + (f".{tail}" if tail else "")


def _duration(raw: str | float | int) -> str:
    total = math.floor(float(raw) + 0.5)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    elif minutes:
        text = f"{minutes}m {seconds}s"
    else:
        text = f"{seconds}s"
    return sign + text


def _time(raw: str) -> str:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # a date, or a naive time: JavaScript reads those as UTC too
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def shown(kind: str, raw: Any) -> str:
    """The text format.js writes for ``raw`` (a value from the API's JSON) of ``kind``."""
    if raw is None or raw == "":
        return DASH
    match kind:
        case "usd":
            return _decimal(raw, 2)
        case "pct":
            return _decimal(raw, 2) + " %"
        case "percent":
            value = raw * 100 if not isinstance(raw, str) else Decimal(raw) * 100
            return _decimal(str(value) if isinstance(value, Decimal) else value, 2) + " %"
        case "ratio":
            return _decimal(raw, 4)
        case "int":
            return _decimal(raw, 0) if not isinstance(raw, str) else _trimmed(raw)
        case "number":
            if isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer()):
                return _decimal(raw, 0)
            return _decimal(raw, 2)
        case "qty":
            return _trimmed(raw)
        case "duration":
            return _duration(raw)
        case "time":
            return _time(raw)
        case "month":
            return str(raw)[:7]
        case "bool":
            return "yes" if raw else "no"
        case _:
            return str(raw)


def raw_text(raw: Any) -> str:
    """data-value: strings as given, numbers and booleans in JSON's spelling, "" for null."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return raw if isinstance(raw, str) else str(raw)
