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
from django.http import HttpRequest
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


def _counted(ident: str, limit: int, period: int) -> float:
    """Count one request for ``ident`` in this window: 0.0 when it is within the limit (or the
    limit cannot be enforced), else the seconds until the window ends."""
    now = time.time()
    window = int(now // period)
    key = f"throttle:{ident}:{window}"
    try:
        count = redis_attempt("rate limit", lambda: _count(key, timeout=period + 1), None)
    except Exception:  # a failure that is not Redis's: serve, and say so in the log
        log.warning("rate limit not enforced: the cache failed", exc_info=True)
        return 0.0
    if count is None:
        log_once("rate limit", "rate limit not enforced: Redis is unreachable")
        return 0.0
    if count <= limit:
        return 0.0
    return max((window + 1) * period - now, 1e-9)


# The attribute of a Django request whose rate was counted before DRF saw it: the seconds
# until the window ends when it is over the limit, else 0.0.
RATE_COUNTED = "_atb_rate_counted"


def token_rate_counted(request: HttpRequest, *, token_id: int) -> bool:
    """Count ``request`` against the rate of the API token ``token_id`` (as the throttle counts
    a token's requests); whether it is within it. The throttle, if DRF's path then answers the
    request, reads this count instead of counting it again."""
    limit, period = parse_rate(settings.API_THROTTLE_RATE)
    retry_after = _counted(f"token:{token_id}", limit, period)
    setattr(request, RATE_COUNTED, retry_after)
    return retry_after == 0.0


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
        counted = getattr(request._request, RATE_COUNTED, None)
        if counted is not None:  # counted already, by trading.api.trades_single
            self.retry_after = counted
            return counted == 0.0
        self.retry_after = _counted(self.ident(request), self.limit, self.period)
        return self.retry_after == 0.0

    def wait(self) -> float:
        return max(self.retry_after, 1.0)
