"""API tokens: made once (the caller sees the full token once), stored as a sha256 hash."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

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


def token_authenticate(*, key: str) -> ApiToken | None:
    """The live token for ``key`` (with its bot or user), or None. Notes the last use."""
    token = (
        ApiToken.objects.select_related("bot", "user")
        .filter(key_hash=token_hash(key), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    if token.user is not None and not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
