"""Per-token request rate: an atomic counter in Redis per fixed window. Over it: 429 with
Retry-After. With Redis unreachable (or skipped by the circuit breaker, trading/redis_breaker.py)
the API keeps serving, the limit then not enforced, and says so once per outage in each
process: a bot's writes matter more than its rate."""

import functools
import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from trading.models import ApiToken
from trading.redis_breaker import log_once, redis_attempt

log = logging.getLogger(__name__)

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'6000/min' -> (6000, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


# Creates the window's counter (expiring) unless it exists, then adds one: atomically, in one
# round trip. Django's cache.add() then cache.incr() take three (incr checks the key exists).
_COUNT = "redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX') return redis.call('INCR', KEYS[1])"


@functools.lru_cache(maxsize=8)
def _counter(backend: RedisCache) -> Any:
    """The script on a client of ``backend``'s connection pool, made once per cache backend:
    making a redis.Redis client (as every cache call does) costs more than the round trip."""
    return backend._cache.get_client(None, write=True).register_script(_COUNT)


def _count(key: str, *, timeout: int) -> int:
    """This window's count for ``key`` after this request; an ordinary (integer) cache entry."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.add(key, 0, timeout=timeout)
        return backend.incr(key)
    full_key = backend.make_and_validate_key(key)
    return int(_counter(backend)(keys=[full_key], args=[timeout]))


class TokenRateThrottle(BaseThrottle):
    """Counts per token (API_THROTTLE_RATE); session callers per user, others per address."""

    def __init__(self) -> None:
        self.limit, self.period = parse_rate(settings.API_THROTTLE_RATE)
        self.retry_after = 0.0

    def ident(self, request: Request) -> str:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"

    def allow_request(self, request: Request, view: Any) -> bool:
        now = time.time()
        window = int(now // self.period)
        key = f"throttle:{self.ident(request)}:{window}"
        try:
            count = redis_attempt("rate limit", lambda: _count(key, timeout=self.period + 1), None)
        except Exception:  # a failure that is not Redis's: serve, and say so in the log
            log.warning("rate limit not enforced: the cache failed", exc_info=True)
            return True
        if count is None:
            log_once("rate limit", "rate limit not enforced: Redis is unreachable")
            return True
        if count <= self.limit:
            return True
        self.retry_after = (window + 1) * self.period - now
        return False

    def wait(self) -> float:
        return max(self.retry_after, 1.0)
