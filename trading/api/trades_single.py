"""POST trades/ with one trade, in one round trip to PostgreSQL and one to Redis.

The generic path (DRF: the token's look-up, the rate limit, the upsert) takes two round trips
to PostgreSQL and spends more time in DRF's request cycle than in either. A bot's usual send,
one well-formed trade entered today, without an Idempotency-Key, is taken here before DRF:

1. the body is decoded and checked by trades_fast, as a batch's trades are;
2. the rate limit is counted in Redis under the token's id (``token:<id>``, as the throttle
   counts it), known from an earlier request of this process that the generic path
   authenticated: a token's id never changes, so ``known_bot_token`` is a fact kept, not a
   credential;
3. one statement checks the token (live, the bot's), notes its last use and upserts the trade
   (trade_upsert_for_token): a token revoked a moment ago, by any process or by hand in SQL,
   writes nothing.

Anything else returns None and DRF's path answers as always: a token this process has not seen
(its first request), a token the statement does not find live (401), a body or trade the fast
checks leave alone, a trade entered before today (it marks the risk_metrics backlog), a row
PostgreSQL refuses, and a request over the rate. The count is made once: the throttle reads
this request's count (``RATE_COUNTED``) instead of counting it again.
"""

import hashlib
from collections.abc import Callable
from datetime import UTC
from typing import Any

import msgspec
from django.conf import settings
from django.db import DataError, IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from trading.api.common import body_put_back
from trading.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from trading.api.throttling import token_rate_counted
from trading.api.trades_fast import BotRef, FastTrade, NotFast, trades_copy_text
from trading.services.ingest.trades import TRADE_COLUMNS, trade_upsert_for_token
from trading.services.tokens import known_bot_token

_DECODER = msgspec.json.Decoder(FastTrade)
_NAMES = [name for name, _ in TRADE_COLUMNS]
_NULL = "\\N"


def single_trade_fast(
    request: HttpRequest, *, refused: Callable[[dict[str, Any]], list[Any]]
) -> HttpResponse | None:
    """The answer to a POST of one trade, or None (nothing written, nothing counted twice) when
    DRF's path must answer it. ``refused``: the generic path's overflow rules."""
    meta = request.META
    if IDEMPOTENCY_HEADER in request.headers:
        return None
    if meta.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
        return None
    parts = meta.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].isascii():
        return None
    known = known_bot_token(hashlib.sha256(parts[1].encode()).hexdigest())
    if known is None:
        return None
    key_hash, token_id, bot_id = known
    raw = _body(request)
    if raw is None:
        return None
    values = _trade_values(raw, bot_id=bot_id, refused=refused)
    if values is None:
        return None
    allowed = token_rate_counted(request, token_id=token_id)
    if not allowed:
        return None  # DRF's path answers 429 (and counts nothing more)
    try:
        counts = trade_upsert_for_token(key_hash=key_hash, bot_id=bot_id, values=values)
    except (DataError, IntegrityError):  # nothing written; DRF's path names the field
        return None
    if counts is None:  # not a live token of this bot: DRF's path answers 401
        return None
    return HttpResponse(msgspec.json.encode(counts.as_json()), content_type="application/json")


def _body(request: HttpRequest) -> bytes | None:
    """The body (read and put back, as trading.api.common.fast_path_body does), if it is one
    JSON object within the API's limit."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= settings.API_MAX_BODY_BYTES or getattr(request, "_read_started", True):
        return None
    raw = request.read(length)
    body_put_back(request, raw)
    if raw[:1] != b"{" or b"\\u" in raw:
        return None
    return raw


def _trade_values(
    raw: bytes, *, bot_id: str, refused: Callable[[dict[str, Any]], list[Any]]
) -> dict[str, str | None] | None:
    """The trade's column texts (None for NULL; source None for the bot's mode), checked as
    the batch fast path checks a trade; None when DRF's path must judge it."""
    try:
        item = _DECODER.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None
    today = timezone.now().astimezone(UTC).date().isoformat()
    try:
        text, stale = trades_copy_text([item], bot=BotRef(bot_id), today=today, refused=refused)
    except NotFast:
        return None
    if stale or "\\" in text.replace("\t\\N", ""):  # escaped text: left to the generic path
        return None
    fields = text[:-1].split("\t")
    return {
        name: None if value == _NULL else value for name, value in zip(_NAMES, fields, strict=True)
    }
