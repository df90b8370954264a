"""How a figure is written for a person: one rule per kind, deterministic.

This module is the rule book; static/dashboard/format.js is its twin for the figures the
dashboard draws in the browser, and tests/browser/test_dashboard.py runs both on the same cases
and requires the same text. docs/DESIGN.md, "Numbers a desk can read", lists the rules.

Decimal strings are rounded as decimals (half away from zero); JSON numbers (ratios) are rounded
from their exact binary value the same way, which is what JavaScript's Number#toFixed does.

- usd: cents, thousands separators, the currency after: ``-12,345.68 USD``
- pct: a value already in percent: ``-12.35%``; percent: a fraction (0..1) as a percentage
- price: the market's own places (``trading.selectors.precision``), grouped; without known
  places the exact value without trailing zeros; no price at all is ``unknown``
- limit: a risk limit or actual value in its event type's unit (``RISK_UNITS``)
- duration: seconds as the two largest units, the second one two digits: ``2h 05m``
- time: ``2026-12-07 23:05:09 UTC`` (UTC, whole seconds, the zone written)
- leverage: ``3x``; qty: the exact value without trailing zeros, grouped
- anything else missing (None, "") is an em dash
"""

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

DASH = "\u2014"
UNKNOWN = "unknown"
CURRENCY = "USD"

# The unit of a risk event's limit_value and actual_value, by event type (the values
# analytics.services.risk writes: its Breach units, and the heartbeat check's seconds).
RISK_UNITS: dict[str, str] = {
    "daily_loss_limit": "usd",
    "drawdown_limit": "pct",
    "position_size_limit": "usd",
    "leverage_limit": "x",
    "open_positions_limit": "count",
    "stale_heartbeat": "seconds",
    "position_mismatch": "qty",
}


def _group(digits: str) -> str:
    return f"{int(digits):,}"


def decimal(raw: str | float | int | Decimal, places: int) -> str:
    """``raw`` rounded half away from zero to ``places``, with thousands separators."""
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, str):
        value = Decimal(raw)
    else:
        value = Decimal(float(raw))
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)
    text = format(abs(rounded), "f")
    head, _, tail = text.partition(".")
    return ("-" if rounded < 0 else "") + _group(head) + (f".{tail}" if places else "")


def trimmed(raw: str | float | int | Decimal) -> str:
    """The exact value without trailing zeros, with thousands separators."""
    value = raw if isinstance(raw, Decimal) else Decimal(raw if isinstance(raw, str) else repr(raw))
    text = format(abs(value), "f")
    head, _, tail = text.partition(".")
    tail = tail.rstrip("0")
    negative = value < 0 and value != 0
    return ("-" if negative else "") + _group(head) + (f".{tail}" if tail else "")


def duration(raw: str | float | int | Decimal) -> str:
    """Seconds as ``1d 03h``, ``2h 05m``, ``5m 09s`` or ``42s`` (rounded to the second)."""
    total = math.floor(float(raw) + 0.5)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days}d {hours:02d}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    elif minutes:
        text = f"{minutes}m {seconds:02d}s"
    else:
        text = f"{seconds}s"
    return sign + text


def moment(value: datetime) -> str:
    """A time as ``2026-12-07 23:05:09 UTC`` (a naive time is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _time(raw: str) -> str:
    return moment(datetime.fromisoformat(raw.replace("Z", "+00:00")))


def _percent(raw: Any) -> str:
    value = Decimal(raw) * 100 if isinstance(raw, str | Decimal) else raw * 100
    return decimal(value, 2) + "%"


def price(raw: Any, places: int | None) -> str:
    """A price at its market's places; ``unknown`` when there is none."""
    if raw is None or raw == "":
        return UNKNOWN
    return trimmed(raw) if places is None else decimal(raw, places)


# The kind a risk value of each unit is written as (count and qty: exact, without trailing zeros).
_UNIT_KINDS = {"usd": "usd", "pct": "pct", "x": "leverage", "seconds": "duration"}


def limit(raw: Any, unit: str | None) -> str:
    """A risk limit or actual value with its unit."""
    return shown(_UNIT_KINDS.get(unit or "", "qty"), raw)


def shown(kind: str, raw: Any, *, places: int | None = None, unit: str | None = None) -> str:
    """The text for ``raw`` (a value as the API's JSON gives it) of ``kind``. ``places``: a
    price's market places; ``unit``: a risk value's unit (``RISK_UNITS``)."""
    if kind == "price":
        return price(raw, places)
    if kind == "limit":
        return limit(raw, unit)
    if raw is None or raw == "":
        return DASH
    match kind:
        case "usd":
            return decimal(raw, 2) + " " + CURRENCY
        case "pct":
            return decimal(raw, 2) + "%"
        case "percent":
            return _percent(raw)
        case "ratio":
            return decimal(raw, 4)
        case "int":
            return decimal(raw, 0) if not isinstance(raw, str) else trimmed(raw)
        case "number":
            if isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer()):
                return decimal(raw, 0)
            return decimal(raw, 2)
        case "qty":
            return trimmed(raw)
        case "leverage":
            return trimmed(raw) + "x"
        case "duration":
            return duration(raw)
        case "time":
            return _time(raw) if isinstance(raw, str) else moment(raw)
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
