"""``Authorization: Bearer <token>``: a bot's token makes the caller that bot; a staff token
makes the caller that user. Anything else is 401."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from trading.models import ApiToken, Bot
from trading.services.tokens import token_authenticate


@dataclass(frozen=True)
class BotPrincipal:
    """The caller when a bot's token is used: authenticated, never staff, one bot."""

    bot: Bot
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True

    @property
    def bot_id(self) -> str:
        return self.bot.bot_id

    @property
    def pk(self) -> str:
        return f"bot:{self.bot.bot_id}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def calling_bot(request: Request) -> Bot | None:
    """The bot making the request, or None for a staff caller."""
    user = request.user
    return user.bot if isinstance(user, BotPrincipal) else None


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[BotPrincipal | User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <token>' with no spaces in the token."
            )
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token has characters no token has.") from exc
        token = token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        if token.bot is not None:
            return BotPrincipal(bot=token.bot), token
        if token.user is None:  # impossible under api_tokens_one_owner; never let it through
            raise exceptions.AuthenticationFailed("The token has no owner.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A bot's token (create_bot_token) or a staff token (create_api_token).",
        }
