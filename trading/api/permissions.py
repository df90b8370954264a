"""Who may call what: bots write and read their own rows; staff read everything."""

from typing import Any

from django.contrib.auth.models import User
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from trading.api.auth import BotPrincipal


class IsBot(BasePermission):
    message = "Only a bot's token can call this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, BotPrincipal)


class IsStaff(BasePermission):
    message = "Staff only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_active and user.is_staff


class IsBotOrStaff(BasePermission):
    message = "A bot's token or a staff user is required."

    def has_permission(self, request: Request, view: Any) -> bool:
        return IsBot().has_permission(request, view) or IsStaff().has_permission(request, view)
