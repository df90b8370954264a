"""Reads through HTTP: the trade list endpoint, the admin's trade list page, a day of one
market's candles, the dashboard's portfolio page and the busiest bot's page.

A gunicorn serves the configured database (the data set) with production settings (only static
files come from the source folders: ``benchmarks.server_settings``). The bench signs in as
it would in production: a bot's API token for the endpoint, a staff session for the admin and
the dashboard; both are made for the run and deleted after it. The baseline of each request is
the SQL the same request issues, captured from one request served in this process.
"""

import contextlib
import http.client
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.test.utils import override_settings

from benchmarks.bench.baseline import Replay, capture, measure
from benchmarks.bench.browser import dashboard_operations, dashboard_ops
from benchmarks.bench.reads import (
    SKIPPED,
    Repeats,
    Subject,
    attempt,
    failed,
    ms_op,
    unavailable,
)
from benchmarks.bench.report import Operation, Target
from benchmarks.bench.scratch import BenchError, PgServer, gunicorn_server, server_env
from benchmarks.server_settings_static import PLAIN_STATICFILES
from trading.models import ApiToken
from trading.services.tokens import PREFIX_LENGTH, TOKEN_PREFIX, token_hash

Log = Callable[[str], None]
TRADES_URL = "/api/v1/trades/"
CANDLES_URL = "/api/v1/market-data/"
ADMIN_TRADES_URL = "/admin/trading/trade/"
SERVER_SETTINGS = "benchmarks.server_settings"


@dataclass(frozen=True)
class Credentials:
    token: str  # the subject bot's API token
    session_key: str  # a superuser's session


@contextlib.contextmanager
def bench_credentials(subject: Subject) -> Iterator[Credentials]:
    """A bot token and a superuser session for the run; deleted on the way out."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        key_hash=token_hash(key), prefix=key[:PREFIX_LENGTH], bot=subject.bot, name="bench"
    )
    user = User.objects.create_superuser(
        username=f"bench-{os.getpid()}-{secrets.token_hex(4)}", email="", password=None
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    try:
        yield Credentials(token=key, session_key=str(session.session_key))
    finally:
        session.delete()
        token.delete()
        user.delete()


class HttpGetter:
    """One kept-alive connection; GETs that must answer 200."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = headers

    def get(self, path: str) -> bytes:
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.connection.close()


def _captured_request(path: str, **headers: Any) -> Replay:
    """The SQL of one request served in this process, as gunicorn's worker would serve it.

    Static files resolve as the bench's gunicorn resolves them (``benchmarks.server_settings``):
    under production settings without ``collectstatic`` the manifest storage has no entry for
    the admin's CSS, and the page would fail here though it renders there.
    """
    client = Client(**headers)
    with override_settings(
        ALLOWED_HOSTS=["testserver"],
        SECURE_SSL_REDIRECT=False,
        STORAGES={**settings.STORAGES, "staticfiles": PLAIN_STATICFILES},
    ):
        replay = capture(lambda: _ok(client.get(path), path))
    return replay


def _ok(response: Any, path: str) -> None:
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code} in process")


def page_operations(
    subject: Subject,
    *,
    raw: psycopg.Connection[Any],
    repeats: Repeats,
    browser_repeats: Repeats,
    workers: int,
    log: Log,
    skip: frozenset[str] = frozenset(),
) -> list[Operation]:
    """Each page measured on its own: one that fails is reported not available, with why; those
    named in ``skip`` too, unmeasured."""
    http_ops = http_page_ops()
    dashboard = dashboard_ops()
    for op in [*http_ops, *dashboard]:
        if op.name in skip:
            unavailable(op, SKIPPED)
    if not any(op.available for op in [*http_ops, *dashboard]):
        return [*http_ops, *dashboard]
    server = PgServer.from_settings()
    env = {
        **server_env(throttle_rate="1000000000/s"),
        "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
        # The sessions made here must verify there.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": server.url(server.configured_name),
    }
    try:
        with (
            bench_credentials(subject) as credentials,
            tempfile.TemporaryDirectory(prefix="atb-bench-reads-") as tmp,
        ):
            bearer = f"Bearer {credentials.token}"
            cookie = f"{settings.SESSION_COOKIE_NAME}={credentials.session_key}"
            requests = [
                (
                    http_ops[0],
                    TRADES_URL,
                    {"HTTP_AUTHORIZATION": bearer},
                    {"Authorization": bearer},
                ),
                (http_ops[1], ADMIN_TRADES_URL, {"HTTP_COOKIE": cookie}, {"Cookie": cookie}),
                (
                    http_ops[2],
                    candles_day_url(subject),
                    {"HTTP_AUTHORIZATION": bearer},
                    {"Authorization": bearer},
                ),
            ]
            replays: dict[str, Replay] = {}
            requests = [r for r in requests if r[0].available]
            for op, path, meta, _ in requests:

                def capture_one(op: Operation = op, path: str = path, meta: Any = meta) -> None:
                    replays[op.name] = _captured_request(path, **meta)

                attempt(op, capture_one, log)
            with gunicorn_server(
                env=env, workers=workers, log_path=Path(tmp) / "gunicorn.log", log=log
            ) as port:
                for op, path, _, headers in requests:
                    if op.name not in replays:
                        continue

                    def measure_one(
                        op: Operation = op, path: str = path, headers: Any = headers
                    ) -> None:
                        _measure_http(op, port, path, headers, replays[op.name], raw, repeats, log)

                    attempt(op, measure_one, log)
                if any(op.available for op in dashboard):  # one page loads the other's code
                    dashboard = dashboard_operations(
                        base_url=f"http://127.0.0.1:{port}",
                        cookie_name=settings.SESSION_COOKIE_NAME,
                        session_key=credentials.session_key,
                        bot_id=subject.bot.bot_id,
                        repeats=browser_repeats,
                        log=log,
                    )
                    for op in dashboard:
                        if op.name in skip:  # measured with the other page, not reported
                            op.seconds.clear()
                            unavailable(op, SKIPPED)
    except Exception as exc:  # the server or the credentials: every page left
        for op in [*http_ops, *dashboard]:
            if op.available and not op.seconds:
                failed(op, exc, log)
    return [*http_ops, *dashboard]


def _measure_http(
    op: Operation,
    port: int,
    path: str,
    headers: dict[str, str],
    replay: Replay,
    raw: psycopg.Connection[Any],
    repeats: Repeats,
    log: Log,
) -> None:
    getter = HttpGetter(port, headers)
    try:
        measure(
            op,
            lambda: getter.get(path),
            baseline=lambda: replay.run(raw),
            warmup=repeats.warmup,
            samples=repeats.samples,
        )
    finally:
        getter.close()
    log(f"{op.name}: {len(op.seconds)} requests")


def candles_day_url(subject: Subject) -> str:
    """The subject market's last day of 1m candles, one page (the selector's candles_day)."""
    query = urlencode(
        {
            "symbol": subject.symbol,
            "exchange": subject.exchange,
            "timeframe": "1m",
            "start": (subject.candles_end - timedelta(days=1)).isoformat(),
            "end": subject.candles_end.isoformat(),
            "limit": 1440,
        }
    )
    return f"{CANDLES_URL}?{query}"


def http_page_ops() -> list[Operation]:
    """The reads through gunicorn, with issue 19's ceilings on their ratio to their SQL and
    issue 15's target for the day of candles."""
    return [
        ms_op("trade_list_api", "GET trades/ (a bot's newest 100, HTTP)", max_ratio=2.5),
        ms_op("admin_trade_list", "admin trade list page (HTTP, superuser)", max_ratio=5.0),
        ms_op(
            "candles_day_api",
            "GET market-data/ (one day of 1m candles, one market, HTTP)",
            Target("p50", "<", 2),
        ),
    ]


def pages_unavailable(why: str) -> list[Operation]:
    return [
        *(unavailable(op, why) for op in http_page_ops()),
        *(unavailable(op, why) for op in dashboard_ops()),
    ]
