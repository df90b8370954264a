"""JSON values people type or pass in (admin forms, configuration files): what cannot be
stored or shown is refused with the key at fault and the reason, never a 500.

- Nesting deeper than the API's ``JSON_MAX_DEPTH`` (trading.api.shapes, API.md): thousands of
  levels exhaust Python's stack when the value is parsed, validated, stored or shown again.
- A lone UTF-16 surrogate (``"\\ud800"`` in JSON text) in a key or a string: it is not text,
  so UTF-8 and PostgreSQL cannot hold it and a page showing it back cannot be encoded. A proper
  pair (``"\\ud83d\\ude80"``) is one character once parsed and is accepted.
"""

import re
from typing import Any

from trading.api.shapes import JSON_MAX_DEPTH, nests_within_limit

TOO_DEEP = f"nests deeper than {JSON_MAX_DEPTH} levels of objects and arrays"
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def escaped(text: str) -> str:
    """``text`` with each lone surrogate written as its escape, so a message can be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_refusal(value: Any) -> tuple[str | None, str] | None:
    """Why ``value`` (parsed JSON) is refused, or None: (the dotted path of the key or string
    at fault, None for the value as a whole; the reason)."""
    if isinstance(value, dict | list) and not nests_within_limit(value):
        return None, TOO_DEEP
    return _lone_surrogate(value, ())


def json_refused(value: Any, *, whole: str = "The value") -> str | None:
    """``json_refusal`` as one message: "risk.stop_loss_pct: contains ...", or, when the value
    as a whole is at fault, ``whole`` and the reason ("The value nests deeper than ...")."""
    refusal = json_refusal(value)
    if refusal is None:
        return None
    path, reason = refusal
    return f"{path}: {reason}" if path is not None else f"{whole} {reason}"


def _lone_surrogate(value: Any, path: tuple[str, ...]) -> tuple[str | None, str] | None:
    """The first lone surrogate, in a key or a string. Recurses at most JSON_MAX_DEPTH levels:
    nesting is checked first."""
    if isinstance(value, str):
        found = _LONE_SURROGATE.search(value)
        if found is not None:
            return _surrogate_refusal(path, found.group())
    elif isinstance(value, dict):
        for key, child in value.items():
            found = _LONE_SURROGATE.search(key)
            if found is not None:
                return _surrogate_refusal((*path, key), found.group())
            inner = _lone_surrogate(child, (*path, key))
            if inner is not None:
                return inner
    elif isinstance(value, list):
        for index, child in enumerate(value):
            inner = _lone_surrogate(child, (*path, str(index)))
            if inner is not None:
                return inner
    return None


def _surrogate_refusal(path: tuple[str, ...], surrogate: str) -> tuple[str | None, str]:
    reason = f"contains a lone UTF-16 surrogate ({escaped(surrogate)}), which is not text"
    return (escaped(".".join(path)) if path else None), reason
