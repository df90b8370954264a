"""``Idempotency-Key`` on any POST: the same key and body replay the first answer; the same key
with another body is refused with 409.

The write and the record of its answer commit together, under a transaction-scoped advisory
lock on (caller, key): of several identical requests racing, one writes and the others wait,
then replay its answer. Answers are kept in PostgreSQL, so a Redis outage loses none.

Every bot's write goes through ``idempotent``, keyed or not, so this is also where a write that
PostgreSQL aborted as a deadlock or a serialization failure is run again, whole: the key's
record and the rows commit together or not at all, so a retried write leaves exactly what one
successful write leaves (trading.db.conflict_retrying).
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from trading.api.auth import BotPrincipal
from trading.api.errors import FieldError, InvalidInput
from trading.db import conflict_retrying
from trading.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def _principal(request: Request) -> str:
    user = request.user
    if isinstance(user, BotPrincipal):
        return user.pk
    return f"user:{getattr(user, 'pk', '')}"


def _body_hash(request: Request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(request: Request, produce: Callable[[], Response]) -> Response:
    """Run ``produce`` once per (caller, Idempotency-Key); replay its answer to repeats. A
    deadlock or serialization failure runs it again (with the key's check and record)."""
    return conflict_retrying(lambda: _idempotent_once(request, produce))


def _idempotent_once(request: Request, produce: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        return produce()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            [FieldError(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable characters")]
        )
    principal = _principal(request)
    body_hash = _body_hash(request)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{principal}\n{key}"]
            )
        stored = IdempotencyKey.objects.filter(principal=principal, key=key).first()
        if stored is not None:
            if stored.body_hash != body_hash or stored.path != request.path:
                return Response(
                    {
                        "error": "idempotency_key_reused",
                        "detail": f"{HEADER} {key!r} was used with another request body or path.",
                    },
                    status=status.HTTP_409_CONFLICT,
                )
            return Response(
                stored.response, status=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
        response = produce()
        if status.is_success(response.status_code):
            data: Any = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
            IdempotencyKey.objects.create(
                principal=principal,
                key=key,
                method=request.method or "POST",
                path=request.path,
                body_hash=body_hash,
                status_code=response.status_code,
                response=data,
            )
        return response
