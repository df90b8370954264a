"""Reads of the bot registry and configurations, shared by the admin, the API and tasks."""

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from botconfig.models import BotConfiguration
from trading.models import Bot

_MISSING = object()


@dataclass(frozen=True)
class ConfigChange:
    """One difference between two configurations, at a dotted path (``risk.max_leverage``)."""

    path: str
    kind: str  # "added", "removed" or "changed"
    old: Any = None
    new: Any = None


def config_active(*, bot: Bot) -> BotConfiguration | None:
    return BotConfiguration.objects.filter(bot=bot, is_active=True).first()


def config_history(*, bot: Bot) -> QuerySet[BotConfiguration]:
    return (
        BotConfiguration.objects.filter(bot=bot).select_related("created_by").order_by("-version")
    )


def config_previous(*, version: BotConfiguration) -> BotConfiguration | None:
    return (
        BotConfiguration.objects.filter(bot_id=version.bot_id, version__lt=version.version)
        .order_by("-version")
        .first()
    )


def config_diff(*, old: Any, new: Any) -> list[ConfigChange]:
    """The differences from ``old`` to ``new``, walking nested objects key by key.

    Lists and scalars compare as whole values. The result is sorted by path.
    """
    changes: list[ConfigChange] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                child = f"{path}.{key}" if path else str(key)
                walk(child, a.get(key, _MISSING), b.get(key, _MISSING))
        elif a is _MISSING:
            changes.append(ConfigChange(path=path, kind="added", new=b))
        elif b is _MISSING:
            changes.append(ConfigChange(path=path, kind="removed", old=a))
        elif a != b or type(a) is not type(b):
            changes.append(ConfigChange(path=path, kind="changed", old=a, new=b))

    walk("", old if old is not None else {}, new)
    return changes
