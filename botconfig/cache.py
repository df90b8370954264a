"""The configuration in force, per bot, cached in Redis and dropped when a new version is
written (config_version_create calls ``config_cache_drop`` once its transaction commits).

Each bot has a generation counter beside its entry. A read notes the generation before it goes
to PostgreSQL and stores the entry under it; a drop bumps the counter. So a read that raced a
new version (it read the old one, the drop came before it stored it) stores an entry no later
read accepts: a new version is served from the moment it commits.

With Redis unreachable reads go to PostgreSQL and writes of versions still land. A drop that
could not reach Redis leaves the old entry until it expires: CONFIG_CACHE_SECONDS bounds that.
"""

from typing import Any

from django.core.cache import caches

from botconfig.selectors import config_active
from trading.models import Bot
from trading.redis_breaker import redis_attempt, redis_client, redis_key
from trading.services.live_state import iso_utc

CONFIG_CACHE_SECONDS = 300


def config_cache_key(bot_id: str) -> str:
    """The cache key of the bot's configuration in force (before the cache's prefix)."""
    return f"config:{bot_id}"


def _generation_key(bot_id: str) -> str:
    return f"config:{bot_id}:generation"


def config_cache_drop(bot_id: str) -> None:
    """Forget the cached configuration of ``bot_id`` (logged, never raised, if Redis is down)."""

    def drop() -> None:
        pipe = redis_client().pipeline(transaction=True)
        pipe.incr(redis_key(_generation_key(bot_id)))  # an integer Django's cache reads back
        pipe.delete(redis_key(config_cache_key(bot_id)))
        pipe.execute()

    redis_attempt("config cache drop", drop, None)


def config_in_force(*, bot: Bot) -> dict[str, Any] | None:
    """``{"version", "config", "effective_from"}`` of the bot's active configuration, or None
    when it has none; from Redis when it holds it (the absence of one is cached too)."""
    cache = caches["default"]
    key, generation_key = config_cache_key(bot.bot_id), _generation_key(bot.bot_id)
    held = redis_attempt("config cache read", lambda: cache.get_many([key, generation_key]), None)
    generation = 0
    if held is not None:
        generation = held.get(generation_key, 0)
        entry = held.get(key)
        if entry is not None and entry["generation"] == generation:
            found: dict[str, Any] | None = entry["value"]
            return found
    version = config_active(bot=bot)
    value = (
        None
        if version is None
        else {
            "version": version.version,
            "config": version.config,
            "effective_from": iso_utc(version.effective_from),
        }
    )
    if held is not None:
        entry = {"generation": generation, "value": value}
        redis_attempt(
            "config cache write",
            lambda: cache.set(key, entry, timeout=CONFIG_CACHE_SECONDS),
            None,
        )
    return value
