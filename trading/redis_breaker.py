"""Every call to Redis goes through one circuit breaker per process, so that a Redis in trouble
costs a request nothing: the callers fall back to PostgreSQL (or, for the rate limit, let the
request through) at once instead of waiting out the socket timeout on every call.

States: closed (Redis is called); open after ``REDIS_BREAKER_FAILURES`` failures in a row
(Redis is skipped: every call answers its fallback at once, for
``REDIS_BREAKER_COOLDOWN_SECONDS``); then half-open (the next call is a trial, the others keep
skipping while it runs: a success closes the breaker, a failure opens it for another cool-down).
A frozen Redis thus costs one socket timeout per cool-down per process, not one per request.

An outage is one *episode*, from the first failure to the next success: its opening, each kind
of failure (``what``) and each ``log_once`` message are logged once per episode, and its end once,
so a long outage writes a handful of lines per process, not one per request.

The state is per process (gunicorn workers, Celery workers, threads share it): a forked child
starts closed. It is also reset when the CACHES setting changes (tests point the cache elsewhere).

Reaching Redis: ``redis_client()`` is the raw client behind Django's cache (for hashes, scripts
and pipelines), ``redis_key()`` a name with the cache's prefix and version.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Redis errors and socket errors (refused, reset, timed out) both mean "Redis is unreachable".
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def _failures() -> int:
    return max(int(getattr(settings, "REDIS_BREAKER_FAILURES", 3)), 1)


def _cooldown() -> float:
    return max(float(getattr(settings, "REDIS_BREAKER_COOLDOWN_SECONDS", 5.0)), 0.0)


class Breaker:
    """The circuit breaker's state; ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.failures = 0  # in a row
        self.open_until: float | None = None  # None: closed
        self.trial_since: float | None = None  # a half-open trial call is running
        self.logged: set[str] = set()  # what this episode has logged

    def is_open(self) -> bool:
        """Whether Redis is being skipped (open, or half-open with a trial running)."""
        with self.lock:
            return self.open_until is not None and (
                self.clock() < self.open_until or self.trial_since is not None
            )

    def allow(self) -> bool:
        """Whether this call may go to Redis (closed, or the trial call of a half-open one)."""
        with self.lock:
            if self.open_until is None:
                return True
            now = self.clock()
            if now < self.open_until:
                return False
            # Half-open: one trial at a time; a trial that never reported (its thread died)
            # is given up after a cool-down.
            if self.trial_since is not None and now - self.trial_since < _cooldown():
                return False
            self.trial_since = now
            return True

    def succeeded(self) -> None:
        with self.lock:
            if self.failures == 0 and self.open_until is None:
                return
            was_open = self.open_until is not None
            self.failures, self.open_until, self.trial_since = 0, None, None
            self.logged.clear()
        if was_open:
            log.warning("Redis answers again: the circuit breaker is closed")

    def failed(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.failures += 1
            self.trial_since = None
            opening = self.open_until is None and self.failures >= _failures()
            if self.open_until is not None or opening:
                self.open_until = self.clock() + _cooldown()
            first_of_kind = f"failed: {what}" not in self.logged
            self.logged.add(f"failed: {what}")
        if first_of_kind:
            log.warning("Redis unreachable during %s; falling back: %s", what, exc)
        if opening:
            log.warning(
                "Redis failed %d times in a row: skipping it for %s s at a time until it "
                "answers (reads from PostgreSQL, rate limits not enforced)",
                self.failures,
                _cooldown(),
            )

    def log_once(self, key: str, message: str, *args: Any) -> None:
        """Log ``message`` unless this episode already logged ``key``."""
        with self.lock:
            if f"note: {key}" in self.logged:
                return
            self.logged.add(f"note: {key}")
        log.warning(message, *args)

    def reset(self) -> None:
        with self.lock:
            self.failures, self.open_until, self.trial_since = 0, None, None
            self.logged.clear()


breaker = Breaker()


def _reset_after_fork() -> None:
    global breaker
    breaker = Breaker()  # a new lock too: one held by another thread does not survive a fork


os.register_at_fork(after_in_child=_reset_after_fork)


@receiver(setting_changed)
def _reset_on_new_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "REDIS_BREAKER_FAILURES", "REDIS_BREAKER_COOLDOWN_SECONDS"):
        breaker.reset()


def redis_attempt[T](what: str, action: Callable[[], T], fallback: T) -> T:
    """``action()``, or ``fallback`` when Redis is unreachable or the breaker skips it.

    Only Redis and socket errors count as Redis failing; any other exception means Redis
    answered (the error is elsewhere) and is raised.
    """
    current = breaker
    if not current.allow():
        return fallback
    try:
        result = action()
    except REDIS_ERRORS as exc:
        current.failed(what, exc)
        return fallback
    except BaseException:
        current.succeeded()
        raise
    current.succeeded()
    return result


def redis_skipped() -> bool:
    """Whether this process is skipping Redis now (its breaker is open)."""
    return breaker.is_open()


def log_once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` once per Redis outage in this process (see the module's docstring)."""
    breaker.log_once(key, message, *args)


def redis_client() -> Redis:
    """The raw client behind Django's cache (for hashes and scripts the cache API lacks).

    Raises RedisError when the cache is not a Redis cache, so callers take their fallback.
    """
    backend = caches["default"]
    get_client = getattr(getattr(backend, "_cache", None), "get_client", None)
    if get_client is None:
        raise RedisError("the default cache is not a Redis cache")
    client: Redis = get_client(write=True)
    return client


def redis_key(name: str) -> str:
    """``name`` with the cache's prefix and version, as Django's cache API would store it."""
    return caches["default"].make_key(name)
