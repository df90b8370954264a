"""Cursor pagination on a composite key: newest first, stable under ties and concurrent inserts.

DRF's ``CursorPagination`` keeps only the first ordering column in its cursor and steps over
rows that share that value with an offset (capped at 1,000). A batch of trades with one
``entry_time`` breaks that. Here the cursor holds the whole key of the boundary row, e.g.
``(entry_time, id)``, and a page is "the rows after that key in the ordering":

    WHERE entry_time <= %(t)s AND (entry_time < %(t)s OR id < %(id)s)
    ORDER BY entry_time DESC, id DESC LIMIT page_size + 1

The first condition alone walks the ``(bot, -entry_time)`` / ``(-entry_time)`` indexes; the
second settles ties. The view declares the key as ``ordering``; its last column must be unique.
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpResponse
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from trading.api.errors import FieldError, InvalidInput
from trading.selectors.rowjson import JsonRows

DEFAULT_PAGE_SIZE = 100
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
MAX_PAGE_SIZE = 1_000


def _after(columns: Sequence[tuple[str, bool]], key: Sequence[Any]) -> Q:
    """Rows strictly after ``key`` when walking ``columns`` ((name, descending), ...)."""
    (name, descending), *rest = columns
    value = key[0]
    strictly = Q(**{f"{name}__{'lt' if descending else 'gt'}": value})
    if not rest:
        return strictly
    # The inclusive bound first, so the planner can use an index on the leading column.
    inclusive = Q(**{f"{name}__{'lte' if descending else 'gte'}": value})
    return inclusive & (strictly | (Q(**{name: value}) & _after(rest, key[1:])))


class KeysetCursorPagination(CursorPagination):
    """``?cursor=`` from a previous answer's ``next``/``previous``; ``?page_size=`` up to 1,000.

    Answer: ``{"next": url | null, "previous": url | null, "results": [...]}``. A cursor that
    is not one this API made, or a bad page_size, is a 400 naming the parameter.
    """

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = (
        f"Rows per page (default {DEFAULT_PAGE_SIZE}; at most {MAX_PAGE_SIZE}, larger is capped)."
    )
    cursor_query_description = "The position to continue from: a next or previous link's cursor."
    template = None

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise InvalidInput(
                [FieldError(self.page_size_query_param, "must be a whole number of at least 1")]
            )
        return min(size, self.max_page_size)

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        ordering = getattr(view, "ordering", None)
        if not ordering:
            raise AssertionError(f"{type(view).__name__} must declare its keyset `ordering`")
        return tuple(ordering)

    # --- The cursor: the boundary row's key and the direction, as base64 JSON ---------------

    def _columns(self) -> list[tuple[str, bool]]:
        return [(name.lstrip("-"), name.startswith("-")) for name in self.ordering]

    def _key_of(self, row: Model) -> list[Any]:
        return [getattr(row, name) for name, _ in self._columns()]

    def _boundary_key(self, *, last: bool) -> Sequence[Any]:
        if getattr(self, "_json_keys", False):
            key = self._last_key if last else self._first_key
            return () if key is None else key
        page = self.page or []
        return self._key_of(page[-1] if last else page[0])

    def _encode(self, key: Sequence[Any], *, reverse: bool) -> str:
        payload = json.dumps(
            {"k": [_as_text(v) for v in key], "r": int(reverse)}, separators=(",", ":")
        )
        token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return replace_query_param(self._page_url, self.cursor_query_param, token)

    def _decode(self, request: Request) -> tuple[list[Any], bool] | None:
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            text, reverse = payload["k"], payload["r"]
            columns = self._columns()
            if not isinstance(text, list) or len(text) != len(columns) or reverse not in (0, 1):
                raise ValueError
            key = [
                self._model._meta.get_field(name).to_python(value)
                for (name, _), value in zip(columns, text, strict=True)
            ]
            if any(value is None for value in key):
                raise ValueError
        except (ValueError, TypeError, KeyError, binascii.Error, ValidationError) as exc:
            raise InvalidInput(
                [FieldError(self.cursor_query_param, "is not a cursor this API gave out")]
            ) from exc
        return key, bool(reverse)

    # --- Paging ---------------------------------------------------------------------------------

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        return self._paginate(queryset, request, view, lambda ordered: ordered)

    def paginate_json(
        self, queryset: QuerySet[Any], request: Request, view: Any, rows: JsonRows
    ) -> list[str]:
        """The page as the JSON text of each row, written by PostgreSQL (JsonRows); the cursor
        links come from the boundary rows' key texts."""
        self._json_keys = True
        page = self._paginate(
            queryset, request, view, lambda ordered: rows.queryset(ordered, self._names())
        )
        self._first_key = page[0][-len(self.ordering) :] if page else None
        self._last_key = page[-1][-len(self.ordering) :] if page else None
        return rows.rows(page)

    def _names(self) -> list[str]:
        return [name for name, _ in self._columns()]

    def _paginate(
        self,
        queryset: Any,
        request: Request,
        view: Any,
        select: Callable[[QuerySet[Any]], QuerySet[Any]],
    ) -> list[Any]:
        self.request = request
        self.page_size = self.get_page_size(request)
        self._page_url = remove_query_param(request.build_absolute_uri(), self.cursor_query_param)
        self.base_url = self._page_url
        self.ordering = self.get_ordering(request, queryset, view)
        self._model = queryset.model
        cursor = self._decode(request)
        reverse = bool(cursor and cursor[1])
        columns = self._columns()
        if reverse:
            columns = [(name, not descending) for name, descending in columns]
        queryset = queryset.order_by(
            *(f"-{name}" if descending else name for name, descending in columns)
        )
        if cursor is not None:
            queryset = queryset.filter(_after(columns, cursor[0]))
        rows = list(select(queryset)[: self.page_size + 1])
        more = len(rows) > self.page_size
        page = rows[: self.page_size]
        if reverse:
            page.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, cursor is not None
        self.page = page
        return page

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if not self.page:
            # Walked back past the newest row: the newest rows are the first page.
            return self._page_url
        return self._encode(self._boundary_key(last=True), reverse=False)

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.page:
            return None
        return self._encode(self._boundary_key(last=False), reverse=True)

    def get_json_response(self, rows: list[str]) -> HttpResponse:
        """The answer ``get_paginated_response`` gives, its rows already JSON text: the same
        bytes as DRF's JSONRenderer (compact, U+2028/U+2029 escaped)."""
        next_link, previous_link = _JSON(self.get_next_link()), _JSON(self.get_previous_link())
        body = f'{{"next":{next_link},"previous":{previous_link},"results":[{",".join(rows)}]}}'
        body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return HttpResponse(body.encode(), content_type="application/json")

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )


def _as_text(value: Any) -> str:
    """A key value as text that the model field's ``to_python`` reads back exactly."""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
