"""The bench's own world: a scratch database on the configured server and a gunicorn serving it.

Both are context managers that leave nothing behind: the database is dropped and the server
stopped on the way out, whatever the way out is.
"""

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

Log = Callable[[str], None]

ROOT = Path(settings.BASE_DIR)
# PostgreSQL truncates identifiers past 63 bytes; keep the suffix whole.
MAX_IDENTIFIER = 63
MAINTENANCE_DATABASES = ("postgres", "template1")


class BenchError(Exception):
    """The bench could not run; the message says why."""


@dataclass(frozen=True)
class PgServer:
    """How to reach the PostgreSQL server of the configured ``default`` database."""

    host: str
    port: str
    user: str
    password: str
    configured_name: str

    @classmethod
    def from_settings(cls) -> "PgServer":
        db = settings.DATABASES["default"]
        return cls(
            host=str(db.get("HOST") or ""),
            port=str(db.get("PORT") or ""),
            user=str(db.get("USER") or ""),
            password=str(db.get("PASSWORD") or ""),
            configured_name=str(db["NAME"]),
        )

    def connect(self, dbname: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        params = {"host": self.host, "port": self.port, "user": self.user}
        params = {k: v for k, v in params.items() if v}
        if self.password:
            params["password"] = self.password
        return psycopg.connect(make_conninfo(dbname=dbname, **params), autocommit=autocommit)

    def connect_any(self) -> psycopg.Connection[Any]:
        """A connection to some database of the server, to create and drop others from."""
        last: psycopg.OperationalError | None = None
        for name in (self.configured_name, *MAINTENANCE_DATABASES):
            try:
                return self.connect(name)
            except psycopg.OperationalError as exc:
                last = exc
        raise BenchError(f"cannot reach the PostgreSQL server: {last}")

    def url(self, dbname: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        name = quote(dbname, safe="")
        if self.host.startswith("/"):  # a Unix socket directory
            return f"postgres://{auth}@/{name}?host={quote(self.host, safe='')}"
        port = f":{self.port}" if self.port else ""
        return f"postgres://{auth}@{self.host or 'localhost'}{port}/{name}"


@dataclass(frozen=True)
class ScratchDatabase:
    server: PgServer
    name: str
    alias: str  # a Django database alias pointing at it, for the few ORM writes of the setup

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        return self.server.connect(self.name, autocommit=autocommit)


def scratch_name(configured: str, pid: int) -> str:
    suffix = f"_bench_{pid}"
    return configured[: MAX_IDENTIFIER - len(suffix)] + suffix


def database_exists(server: PgServer, name: str) -> bool:
    with server.connect_any() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


@contextlib.contextmanager
def scratch_database(*, env: dict[str, str], log: Log) -> Iterator[ScratchDatabase]:
    """CREATE DATABASE ``<name>_bench_<pid>``, migrate it; DROP it on the way out."""
    server = PgServer.from_settings()
    scratch = ScratchDatabase(
        server=server,
        name=scratch_name(server.configured_name, os.getpid()),
        alias=f"bench_{os.getpid()}",
    )
    with server.connect_any() as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch.name)))
        except psycopg.errors.DuplicateDatabase as exc:
            raise BenchError(
                f"database {scratch.name!r} already exists (left by a killed run?); drop it "
                "and run again"
            ) from exc
    log(f"created scratch database {scratch.name}")
    try:
        _migrate(scratch, env=env, log=log)
        connections.databases[scratch.alias] = {
            **connections.databases["default"],
            "NAME": scratch.name,
            "CONN_MAX_AGE": 0,
            "OPTIONS": {
                k: v for k, v in connections.databases["default"]["OPTIONS"].items() if k != "pool"
            },
        }
        yield scratch
    finally:
        if scratch.alias in connections.databases:
            connections[scratch.alias].close()
            del connections[scratch.alias]
            del connections.databases[scratch.alias]
        with server.connect_any() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(scratch.name)
                )
            )
        log(f"dropped scratch database {scratch.name}")


def _migrate(scratch: ScratchDatabase, *, env: dict[str, str], log: Log) -> None:
    # A child process: migrations see a plain "default" database, as in a deploy.
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "--skip-checks"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": scratch.url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"migrate failed in {scratch.name}:\n{result.stderr[-4000:]}")
    log(f"migrated {scratch.name} in {time.perf_counter() - started:.1f} s")


def server_env(*, throttle_rate: str) -> dict[str, str]:
    """The environment of a production web process, pointed at nothing yet."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atb_site.settings.base",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_RATE": throttle_rate,
            # Keep the bench's throttle counters apart from those of real tokens with equal ids.
            "CACHE_KEY_PREFIX": f"atb-bench-{os.getpid()}",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn_server(
    *, env: dict[str, str], workers: int, log_path: Path, log: Log
) -> Iterator[int]:
    """``gunicorn atb_site.wsgi`` with the project's gunicorn.conf.py on 127.0.0.1; its port."""
    with gunicorn_process(env=env, workers=workers, log_path=log_path, log=log) as (port, _):
        yield port


@contextlib.contextmanager
def gunicorn_process(
    *, env: dict[str, str], workers: int, log_path: Path, log: Log
) -> Iterator[tuple[int, int]]:
    """As ``gunicorn_server``; its port and the master's pid (the workers are its children)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "atb_site.wsgi",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    with log_path.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go when it goes
        )
    try:
        _wait_live(process, port, log_path)
        log(f"gunicorn ({workers} workers) is live on 127.0.0.1:{port}")
        yield port, process.pid
    finally:
        _stop(process)
        log("gunicorn stopped")


def _wait_live(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise BenchError(f"gunicorn exited with {process.returncode}:\n{tail}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/health/live")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise BenchError("gunicorn did not answer /health/live within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # gunicorn: quick shutdown
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any worker left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
