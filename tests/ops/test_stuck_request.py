"""The threaded worker (GUNICORN_WORKER=threaded, atb_site/gunicorn_worker.py) keeps the sync
worker's guarantees: a request stuck in Python past GUNICORN_TIMEOUT gets its worker killed and
replaced (gunicorn's own gthread worker keeps beating from its main thread and would hold the
stuck thread for good), and GUNICORN_MAX_REQUESTS still replaces a worker whose client keeps
its connection alive.

A real gunicorn with production settings, serving the test database; the stuck request is
tests/ops/stuck_wsgi.py's URL, a pure-Python loop no database deadline can cut.
"""

import http.client
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.factories import make_bot
from tests.ops.servers import free_port, gunicorn_serving, gunicorn_workers
from tests.ops.stuck_wsgi import STUCK_PATH
from tests.ops.test_logging import _production_env
from trading.services.tokens import bot_token_create

GUNICORN_TIMEOUT = 3


@dataclass
class Served:
    gunicorn: subprocess.Popen[str]
    port: int
    log: Path
    token: str

    def workers(self) -> list[int]:
        return gunicorn_workers(self.gunicorn.pid)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * GUNICORN_TIMEOUT)

    def trades(self, conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
        conn.request("GET", "/api/v1/trades/", headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        response.read()
        return response


def _serve(tmp_path: Path, **settings: str) -> Iterator[Served]:
    token = bot_token_create(bot=make_bot("stuck_001")).key
    url = urlsplit(os.environ["DATABASE_URL"])
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = _production_env(
        PORT=str(port),
        GUNICORN_TIMEOUT=str(GUNICORN_TIMEOUT),
        GUNICORN_WORKER="threaded",
        DATABASE_REQUEST_DEADLINE="1",
        DATABASE_URL=urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}")),
        **settings,
    )
    with (
        log.open("w") as handle,
        gunicorn_serving(
            env=env, port=port, output=handle, app="tests.ops.stuck_wsgi:application"
        ) as gunicorn,
    ):
        yield Served(gunicorn=gunicorn, port=port, log=log, token=token)


@pytest.fixture(params=[1, 2], ids=["one thread", "two threads"])
def threads(request: pytest.FixtureRequest) -> int:
    """One thread serves in the worker's main thread; more, in a pool beside it."""
    return int(request.param)


@pytest.fixture
def stuck_web(transactional_db: None, tmp_path: Path, threads: int) -> Iterator[Served]:
    yield from _serve(
        tmp_path, WEB_CONCURRENCY="1", GUNICORN_THREADS=str(threads), GUNICORN_MAX_REQUESTS="0"
    )


@pytest.fixture
def three_requests(transactional_db: None, tmp_path: Path) -> Iterator[Served]:
    yield from _serve(
        tmp_path,
        WEB_CONCURRENCY="1",
        GUNICORN_MAX_REQUESTS="3",
        GUNICORN_MAX_REQUESTS_JITTER="0",
    )


def test_a_request_stuck_in_python_gets_its_worker_replaced_after_the_timeout(
    stuck_web: Served, threads: int
) -> None:
    web = stuck_web
    kept = web.connect()
    assert web.trades(kept).status == 200
    socket_before = kept.sock
    assert web.trades(kept).status == 200
    assert kept.sock is socket_before  # kept alive: the second request used the same socket
    [worker] = web.workers()

    outcome: list[int | OSError] = []
    took: list[float] = []
    sent = time.monotonic()

    def stuck() -> None:
        conn = web.connect()
        try:
            conn.request("GET", STUCK_PATH)
            outcome.append(conn.getresponse().status)
        except OSError as exc:  # the worker was killed under it: no answer
            outcome.append(exc)
        took.append(time.monotonic() - sent)
        conn.close()

    request = threading.Thread(target=stuck)
    request.start()
    time.sleep(1)
    if threads > 1:  # while it is stuck, the worker's other thread serves the kept connection
        assert web.trades(kept).status == 200
    assert web.workers() == [worker]
    request.join(timeout=10 * GUNICORN_TIMEOUT)
    assert not request.is_alive(), web.log.read_text()[-3000:]
    [answer], [seconds] = outcome, took
    assert isinstance(answer, OSError), (answer, web.log.read_text()[-3000:])
    assert GUNICORN_TIMEOUT - 0.5 < seconds < GUNICORN_TIMEOUT + 4, seconds

    deadline = time.monotonic() + 10
    while web.workers() in ([], [worker]) and time.monotonic() < deadline:
        time.sleep(0.1)
    [replacement] = web.workers()
    assert replacement != worker
    assert f"WORKER TIMEOUT (pid:{worker})" in web.log.read_text()
    fresh = web.connect()
    response = web.trades(fresh)
    assert response.status == 200
    fresh.close()
    kept.close()


def test_max_requests_replaces_a_worker_whose_client_keeps_the_connection(
    three_requests: Served,
) -> None:
    web = three_requests
    [worker] = web.workers()
    conn = web.connect()
    first, second, third = (web.trades(conn) for _ in range(3))
    assert [r.status for r in (first, second, third)] == [200, 200, 200]
    assert [r.getheader("Connection") for r in (first, second, third)] == [
        "keep-alive",
        "keep-alive",
        "close",
    ]
    assert conn.sock is None  # the third answer closed it

    deadline = time.monotonic() + 10
    while web.workers() in ([], [worker]) and time.monotonic() < deadline:
        time.sleep(0.1)
    [replacement] = web.workers()
    assert replacement != worker
    response = web.trades(conn)  # http.client connects afresh
    assert response.status == 200
    conn.close()
    log = web.log.read_text()
    assert "Autorestarting worker after current request." in log
    assert "WORKER TIMEOUT" not in log
