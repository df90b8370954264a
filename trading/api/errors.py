"""One error format for the whole API, and no 500 for anything a client sent.

    {"error": "invalid", "detail": "2 items are invalid; nothing was written.",
     "errors": [{"index": 3, "field": "quantity", "reason": "must be greater than 0"}]}

``index`` is present for batch items; ``field`` names the field, ``"body"`` for a refusal of
the body or item as a whole (an empty batch, an item that is not an object). Only a database
refusal that no constraint or column explains has ``null``.
"""

import functools
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import DataError, IntegrityError
from django.db.models import CheckConstraint, Q, UniqueConstraint
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


@dataclass(frozen=True)
class FieldError:
    field: str | None
    reason: str
    index: int | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            body = {"index": self.index, **body}
        return body


class InvalidInput(APIException):
    """400 listing every bad field of every bad item."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, errors: list[FieldError], *, batch: bool = False) -> None:
        self.errors = errors
        items = len({e.index for e in errors}) if batch else 0
        if batch:
            detail = f"{items} item{'s' if items != 1 else ''} invalid; nothing was written."
        else:
            detail = "The request is invalid; nothing was written."
        super().__init__(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, InvalidInput):
        return Response(
            {
                "error": "invalid",
                "detail": str(exc.detail),
                "errors": [e.as_json() for e in exc.errors],
            },
            status=exc.status_code,
        )
    if isinstance(exc, IntegrityError | DataError):
        # The database refused a row the validation let through (a rule only it can check,
        # such as a foreign key or a uniqueness across requests): the client's input, not a 500.
        cause = getattr(exc, "__cause__", None)
        diag = getattr(cause, "diag", None)
        constraint = constraint_of(diag)
        message = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
        return Response(
            {
                "error": "conflict" if isinstance(exc, IntegrityError) else "invalid",
                "detail": f"The database refused the data: {message}; nothing was written.",
                "errors": [
                    {"field": refused_field(diag), "reason": message, "constraint": constraint}
                ],
            },
            status=status.HTTP_409_CONFLICT
            if isinstance(exc, IntegrityError)
            else status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        if detail is not None:
            response.data = {"error": exc.get_codes(), "detail": detail}
        else:
            errors = [
                {"field": field, "reason": " ".join(str(m) for m in messages)}
                for field, messages in (
                    response.data.items() if isinstance(response.data, dict) else []
                )
            ]
            response.data = {
                "error": "invalid",
                "detail": "The request is invalid.",
                "errors": errors,
            }
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's handler404: under /api/ the API's JSON format (a URL no route matches, such
    as ``bots/%ED%A0%80/summary/``, whose bot_id is no slug), Django's page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse(
            {"error": "not_found", "detail": "No API endpoint at this URL."}, status=404
        )
    return page_not_found(request, exception)


_PARTITION_SUFFIX = re.compile(r"_p[0-9]{4}_[0-9]{2}$")
# COPY names the column of a value it cannot read: "COPY market_data, line 3, column symbol: ..."
_COPY_COLUMN = re.compile(r"\bcolumn (\w+)")


def constraint_of(diag: Any) -> str | None:
    """The constraint PostgreSQL named, a partition's own key read as its table's: the parent's
    constraint name and the month, market_data_candle_uniq_p2026_12 (trading.services.partitions),
    is market_data_candle_uniq."""
    constraint = getattr(diag, "constraint_name", None)
    return _PARTITION_SUFFIX.sub("", constraint) if constraint else None


def refused_field(diag: Any) -> str | None:
    """The field a database refusal is about, when PostgreSQL says (the column of a NOT NULL or
    COPY error) or a model's constraint of that name tells; None when nothing does (a numeric
    overflow in a multi-row statement names no column: validation must catch those first)."""
    if diag is None:
        return None
    column = getattr(diag, "column_name", None)
    if column:
        return str(column)
    constraint = constraint_of(diag)
    if constraint and constraint in _constraint_fields():
        return _constraint_fields()[constraint]
    match = _COPY_COLUMN.search(getattr(diag, "context", None) or "")
    return match.group(1) if match else None


@functools.cache
def _constraint_fields() -> dict[str, str]:
    """Every model constraint's name and the field it is about: a unique constraint's last
    field (the bot's own key, after the bot), a check's first field."""
    fields: dict[str, str] = {}
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.fields:
                fields[constraint.name] = constraint.fields[-1]
            elif isinstance(constraint, CheckConstraint):
                name = _first_field(constraint.condition)
                if name is not None:
                    fields[constraint.name] = name
    return fields


def _first_field(condition: Any) -> str | None:
    for child in getattr(condition, "children", ()):
        if isinstance(child, tuple):
            return str(child[0]).split("__")[0]
        if isinstance(child, Q):
            found = _first_field(child)
            if found is not None:
                return found
    return None
