"""API tokens: made once (the caller sees the full token once), stored as a sha256 hash."""

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from atb_site.db.base import prepared_cursor
from trading.models import ApiToken, Bot

TOKEN_PREFIX = "atb_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 12
# last_used_at is a hint for people, not an access log: write it at most once a minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # the full token; shown once, never stored


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _issue(*, bot: Bot | None, user: User | None, name: str) -> IssuedToken:
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        key_hash=token_hash(key), prefix=key[:PREFIX_LENGTH], bot=bot, user=user, name=name
    )
    return IssuedToken(token=token, key=key)


def bot_token_create(*, bot: Bot, name: str = "") -> IssuedToken:
    return _issue(bot=bot, user=None, name=name)


def staff_token_create(*, user: User, name: str = "") -> IssuedToken:
    return _issue(bot=None, user=user, name=name)


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@functools.cache
def _live_token_sql() -> str:
    """``ApiToken.objects.select_related("bot", "user").filter(key_hash=%s, revoked_at=None)``
    as SQL, written once from the models: every API request runs it, and compiling that
    queryset cost twice what running it did."""
    qn = connection.ops.quote_name
    token_bot, token_user = ApiToken._meta.get_field("bot"), ApiToken._meta.get_field("user")
    columns = ", ".join(
        f"{alias}.{qn(str(field.column))}"
        for alias, model in _LOOKUP_MODELS
        for field in model._meta.concrete_fields
    )
    return (
        f"SELECT {columns} FROM {qn(ApiToken._meta.db_table)} t"  # noqa: S608 - from the models
        f" LEFT JOIN {qn(Bot._meta.db_table)} b"
        f" ON b.{qn(str(Bot._meta.pk.column))} = t.{qn(str(token_bot.column))}"
        f" LEFT JOIN {qn(User._meta.db_table)} u"
        f" ON u.{qn(str(User._meta.pk.column))} = t.{qn(str(token_user.column))}"
        " WHERE t.key_hash = %s AND t.revoked_at IS NULL"
    )


_LOOKUP_MODELS: tuple[tuple[str, type[Model]], ...] = (("t", ApiToken), ("b", Bot), ("u", User))


def _build(model: type[Model], values: list[Any]) -> Model | None:
    """One instance from its columns, as the ORM builds it; None for the NULLs of a LEFT JOIN."""
    fields = model._meta.concrete_fields
    if values[fields.index(model._meta.pk)] is None:
        return None
    for i, field in enumerate(fields):
        if values[i] is not None and hasattr(field, "from_db_value"):
            values[i] = field.from_db_value(values[i], None, connection)
    return model.from_db(connection.alias, [f.attname for f in fields], values)


# Bot tokens this process has authenticated: key_hash -> (key_hash, id, bot_id). Facts that never
# change for a token row (a token is never re-keyed nor moved to another bot), kept so that a
# write can be checked for its token in the write's own statement (trading.api.trades_single):
# whether the token is live is never taken from here.
_KNOWN_BOT_TOKENS: dict[str, tuple[str, int, str]] = {}
_KNOWN_MOST = 10_000


def known_bot_token(key_hash: str) -> tuple[str, int, str] | None:
    """(key_hash, token id, bot_id) of a bot token this process has authenticated, or None."""
    return _KNOWN_BOT_TOKENS.get(key_hash)


def token_authenticate(*, key: str) -> ApiToken | None:
    """The live token for ``key`` (with its bot or user), or None. Notes the last use."""
    key_hash = token_hash(key)
    with prepared_cursor() as cursor:  # every API request runs it: planned once
        cursor.execute(_live_token_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    found: list[Model | None] = []
    for _, model in _LOOKUP_MODELS:
        width = len(model._meta.concrete_fields)
        found.append(_build(model, list(row[:width])))
        row = row[width:]
    token = cast(ApiToken, found[0])
    # Attached as select_related attaches them: reading token.bot or token.user runs no query.
    token.bot = cast("Bot | None", found[1])
    token.user = cast("User | None", found[2])
    if token.user is not None and not token.user.is_active:
        return None
    if token.bot_id is not None:
        if len(_KNOWN_BOT_TOKENS) >= _KNOWN_MOST:
            _KNOWN_BOT_TOKENS.clear()
        _KNOWN_BOT_TOKENS[key_hash] = (key_hash, token.pk, token.bot_id)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
