"""A PostgreSQL that stops answering (SIGSTOP: the kernel still ACKs, so neither the server's own
timeouts nor TCP keepalives fire) cannot hang the web: a real gunicorn with production settings
answers 503 with Retry-After before its worker timeout, the worker lives on, and once the server
is back the same worker answers 200.

The server is one of the test's own (tests/ops/servers.py) holding a copy of the test
database, so the shared one is never signalled.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import connection

from tests.api.test_trades import trade
from tests.factories import make_bot
from tests.ops.servers import (
    PrivatePostgres,
    free_port,
    gunicorn_serving,
    gunicorn_workers,
    pg_bin,
    private_postgres,
)
from tests.ops.test_logging import _production_env
from trading.services.tokens import bot_token_create

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN_TIMEOUT = 10
REQUEST_DEADLINE = 4

WEB_SETTINGS = {
    "WEB_CONCURRENCY": "1",
    "GUNICORN_TIMEOUT": str(GUNICORN_TIMEOUT),
    "GUNICORN_MAX_REQUESTS": "0",
    "DATABASE_REQUEST_DEADLINE": str(REQUEST_DEADLINE),
}


def _copy_test_database(server: PrivatePostgres) -> None:
    """The test database (schema and the rows made so far) into ``server``'s ``atb``."""
    url = urlsplit(os.environ["DATABASE_URL"])
    source = urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))
    server.create_database("atb")
    dump = subprocess.run(  # noqa: S603 - the embedded PostgreSQL's tools, fixed arguments
        [str(pg_bin() / "pg_dump"), "-Fc", "--no-owner", "-d", source],
        check=True,
        capture_output=True,
    )
    subprocess.run(  # noqa: S603
        [str(pg_bin() / "pg_restore"), "--no-owner", "-d", server.url("atb")],
        input=dump.stdout,
        check=True,
        capture_output=True,
    )


@dataclass
class Web:
    server: PrivatePostgres
    gunicorn: subprocess.Popen[str]
    port: int
    log: Path

    def workers(self) -> list[int]:
        return gunicorn_workers(self.gunicorn.pid)

    def get(self, path: str, token: str) -> tuple[int, dict[str, str], bytes, float]:
        return self.send("GET", path, token)

    def send(
        self, method: str, path: str, token: str, body: object = None
    ) -> tuple[int, dict[str, str], bytes, float]:
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3 * GUNICORN_TIMEOUT)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            conn.request(
                method, path, body=None if body is None else json.dumps(body), headers=headers
            )
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
                time.monotonic() - start,
            )
        finally:
            conn.close()


@pytest.fixture(params=["persistent", "pool"])
def connections_kept(request: pytest.FixtureRequest) -> str:
    """Persistent connections (the default), or Django's psycopg pool (DATABASE_POOL), whose
    check of a connection before handing it out is a query of its own."""
    return str(request.param)


@pytest.fixture
def web(transactional_db: None, tmp_path: Path, connections_kept: str) -> Iterator[Web]:
    with private_postgres() as server:
        _copy_test_database(server)
        port = free_port()
        log = tmp_path / "gunicorn.log"
        env = _production_env(
            **WEB_SETTINGS,
            DATABASE_POOL=str(connections_kept == "pool").lower(),
            PORT=str(port),
            DATABASE_URL=server.url("atb"),
        )
        with (
            log.open("w") as handle,
            gunicorn_serving(env=env, port=port, output=handle) as gunicorn,
        ):
            yield Web(server=server, gunicorn=gunicorn, port=port, log=log)


TRADE = trade(1)
UNAVAILABLE = {
    "error": "unavailable",
    "detail": "The database could not answer (unreachable, busy or timed out); try again shortly.",
}


@pytest.fixture
def bot_key(transactional_db: None) -> str:
    return bot_token_create(bot=make_bot("frozen_001")).key


def test_a_frozen_database_gets_503_before_the_worker_timeout_and_the_worker_lives(
    bot_key: str, web: Web, connections_kept: str
) -> None:
    status, _, body, _ = web.get("/api/v1/trades/", bot_key)
    assert status == 200, body
    workers = web.workers()
    assert len(workers) == 1, workers

    # A request in flight: its write waits on a lock another session holds, inside its
    # transaction, and then the server stops answering altogether.
    with psycopg.connect(web.server.url("atb")) as locker:
        locker.execute("LOCK TABLE trading.trades IN ACCESS EXCLUSIVE MODE")
        in_flight: list[object] = []

        def send() -> None:
            try:
                in_flight.append(web.send("POST", "/api/v1/trades/", bot_key, TRADE))
            except OSError as exc:  # no answer at all (the worker was killed): the failure
                in_flight.append(exc)

        request = threading.Thread(target=send)
        request.start()
        try:
            _wait_for_lock_waiter(web.server.url("atb"))
            with web.server.frozen():
                request.join(timeout=3 * GUNICORN_TIMEOUT)
                [answer] = in_flight
                assert isinstance(answer, tuple), (answer, web.log.read_text()[-3000:])
                status, headers, body, seconds = answer
                assert (status, json.loads(body)) == (503, UNAVAILABLE), web.log.read_text()
                assert headers["retry-after"] == "5"
                assert REQUEST_DEADLINE - 0.5 < seconds < GUNICORN_TIMEOUT - 2, seconds

                # That connection is gone: the next request connects to the frozen server, and
                # gives up in time too.
                status, headers, body, seconds = web.get("/api/v1/trades/", bot_key)
                assert (status, json.loads(body)) == (503, UNAVAILABLE), web.log.read_text()
                assert headers["retry-after"] == "5"
                assert REQUEST_DEADLINE - 0.5 < seconds < GUNICORN_TIMEOUT - 2, seconds
                assert web.workers() == workers
        finally:
            request.join(timeout=3 * GUNICORN_TIMEOUT)
            locker.rollback()

    status, _, body, seconds = web.get("/api/v1/trades/", bot_key)
    assert status == 200, body
    assert json.loads(body)["results"] == []  # the refused write left nothing behind
    assert seconds < 2, seconds
    status, _, body, _ = web.send("POST", "/api/v1/trades/", bot_key, TRADE)
    assert (status, json.loads(body)) == (200, {"created": 1, "updated": 0, "unchanged": 0})
    assert web.workers() == workers
    log = web.log.read_text()
    assert "WORKER TIMEOUT" not in log
    cuts = log.count("did not answer before the request's 4 s deadline")
    # The pool may also have checked a connection it kept for the second request, and cut that.
    assert cuts == 1 if connections_kept == "persistent" else cuts in (1, 2), log


def _wait_for_lock_waiter(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting == (1,):
                return
            time.sleep(0.05)
    raise AssertionError("the request never waited on the lock")
