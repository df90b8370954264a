"""Pieces every write endpoint shares: batches, the caller's bot, the bot_id in a body, the
body's bytes for a fast path."""

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from trading.api.auth import calling_bot
from trading.api.errors import FieldError, InvalidInput
from trading.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from trading.api.shapes import Shape, is_identifier
from trading.models import Bot
from trading.services.ingest import RowsRefused


def request_items(request: Request, *, max_items: int) -> tuple[list[Any], bool]:
    """The body as a list of items, and whether it was a batch (a JSON array)."""
    data = request.data
    if isinstance(data, list):
        if not data:
            raise InvalidInput([FieldError("body", "the batch is empty")])
        if len(data) > max_items:
            raise InvalidInput(
                [FieldError("body", f"a batch holds at most {max_items} items, not {len(data)}")]
            )
        return data, True
    if isinstance(data, dict):
        return [data], False
    raise InvalidInput([FieldError("body", "must be a JSON object or an array of them")])


def bot_of_request(request: Request) -> Bot:
    bot = calling_bot(request)
    if bot is None:  # the IsBot permission runs first; this keeps the type honest
        raise PermissionDenied("Only a bot's token can write here.")
    return bot


def refuse_foreign_bot_ids(items: list[Any], bot: Bot) -> None:
    """403 when an item names a bot other than the caller's (a bot writes only its own rows).

    A bot_id that could name no bot (not text, or with invisible characters) is left to the
    shape, which refuses it with a 400 naming the field.
    """
    foreign = [
        index
        for index, item in enumerate(items)
        if isinstance(item, dict)
        and "bot_id" in item
        and item["bot_id"] != bot.bot_id
        and _could_name_a_bot(item["bot_id"])
    ]
    if foreign:
        raise PermissionDenied(
            f"Items {foreign[:20]} name another bot; this token writes only {bot.bot_id}'s rows."
        )


def _could_name_a_bot(value: Any) -> bool:
    return isinstance(value, str) and value != "" and "\x00" not in value and is_identifier(value)


def bot_rows(
    request: Request,
    *,
    bot: Bot,
    shape: Shape,
    key: Callable[[dict[str, Any]], Any],
    max_items: int,
) -> tuple[list[dict[str, Any]], bool]:
    """The body's items, cleaned by ``shape``, for a write by ``bot``; and whether it was a batch.

    A foreign bot_id is 403; any bad item is a 400 naming it (nothing is written); an item's
    own bot_id, once checked, is dropped: the bot comes from the token.
    """
    items, batch = request_items(request, max_items=max_items)
    refuse_foreign_bot_ids(items, bot)
    rows = shape.clean_many(items, key=key) if batch else [shape.clean_one(items[0])]
    for row in rows:
        row.pop("bot_id", None)
    return rows, batch


def invalid_rows(exc: RowsRefused, *, batch: bool) -> InvalidInput:
    """The 400 for rows the stored data refused, in the format of every other bad input."""
    return InvalidInput(
        [
            FieldError(field, reason, index if batch else None)
            for index, field, reason in exc.errors
        ],
        batch=batch,
    )


def fast_path_body(request: Request) -> bytes | None:
    """The body's bytes for a write's fast path (trading/api/market_fast.py, trades_fast.py),
    read here and put back for DRF's parser to read again; or None when the fast path leaves the
    body alone: a request with an Idempotency-Key (its body is parsed for the key's check, and
    it takes the generic path), not JSON, empty, or over the API's limit (the parser then answers
    as always)."""
    if IDEMPOTENCY_HEADER in request.headers:
        return None
    django_request = request._request
    if getattr(django_request, "_read_started", True):
        return None
    if (request.content_type or "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        length = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= settings.API_MAX_BODY_BYTES:
        return None
    raw = django_request.read(length)
    body_put_back(django_request, raw)
    return raw


def body_put_back(request: HttpRequest, raw: bytes) -> None:
    """Put ``raw``, read from ``request``, back as unread, as the chunked-body middleware
    (trading.api.parsers) leaves a body it read: DRF's parser then reads the same bytes from the
    request as if first."""
    request._stream = io.BytesIO(raw)
    request._read_started = False  # type: ignore[attr-defined]  # Django's own flag
