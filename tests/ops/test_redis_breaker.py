"""The circuit breaker every Redis call goes through (trading/redis_breaker.py), in this process,
against a Redis of the test's own that is not started yet, then started: the breaker opens after
REDIS_BREAKER_FAILURES failures in a row, skips Redis for the cool-down, lets one trial through,
closes on a success; an outage logs its opening and each kind of failure once."""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ops.test_redis_outage import OwnRedis
from trading.redis_breaker import log_once, redis_attempt, redis_client, redis_skipped


def test_the_breaker_opens_skips_tries_once_and_closes(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = OwnRedis(tmp_path)  # its port chosen; nothing listens on it yet
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    settings.REDIS_BREAKER_FAILURES = 3
    settings.REDIS_BREAKER_COOLDOWN_SECONDS = 0.3
    calls: list[int] = []

    def ping() -> bool | None:
        calls.append(1)
        return bool(redis_client().ping())

    def attempt() -> Any:
        return redis_attempt("ping", ping, None)  # None: the fallback

    def after_cooldown(then: Callable[[], Any]) -> Any:
        time.sleep(0.35)
        return then()

    try:
        with caplog.at_level(logging.WARNING, logger="trading.redis_breaker"):
            assert [attempt() for _ in range(10)] == [None] * 10
            assert len(calls) == 3  # the other 7 skipped Redis
            assert redis_skipped()
            for _ in range(5):
                log_once("note", "said once per outage")

            assert after_cooldown(attempt) is None
            assert len(calls) == 4  # one trial, which failed: open again
            assert attempt() is None
            assert len(calls) == 4

            server.start()
            assert after_cooldown(attempt) is True  # the trial succeeds: closed
            assert not redis_skipped()
            assert [attempt(), attempt()] == [True, True]
            assert len(calls) == 7
    finally:
        server.stop()

    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("Redis unreachable during ping") for m in messages) == 1
    assert sum(m.startswith("Redis failed 3 times in a row") for m in messages) == 1
    assert messages.count("said once per outage") == 1
    assert messages.count("Redis answers again: the circuit breaker is closed") == 1
