"""Reads of bot runs the API, the admin and analytics share."""

from django.db.models import QuerySet

from trading.models import Bot, BotRun


def run_list(*, bot: Bot | None) -> QuerySet[BotRun]:
    """Runs: a bot's own (``bot``), or every bot's (None, staff)."""
    runs = BotRun.objects.order_by()
    return runs if bot is None else runs.filter(bot=bot)
