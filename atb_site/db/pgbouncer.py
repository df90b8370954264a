"""PgBouncer in transaction pooling mode in front of a PostgreSQL server: its configuration, and
PgBouncer run as a child process (tools/devservices.py --pgbouncer, the tests, the bench).

    python -m atb_site.db.pgbouncer [SERVER_URL] [--listen-addr 127.0.0.1] [--port 6432] [--dir D]

writes ``pgbouncer.ini`` and ``userlist.txt`` into D and runs PgBouncer in the foreground, in
front of SERVER_URL (by default DATABASE_DIRECT_URL): a Railway PgBouncer service's start command
(README, "Behind PgBouncer").

A transaction pooler gives a client a server connection for one transaction at a time, so
nothing a session sets survives. PgBouncer refuses the startup parameter ``options`` (through
which a direct connection gets its kind's timeouts and ``jit=off``), and a ``SET`` would stay on
a server connection that other clients then use. So PgBouncer sets them: for each database it
serves there is one PgBouncer database per kind of process, ``<name>__<kind>``, whose
``connect_query`` runs the kind's ``SET``s on every server connection of its pool before any
client gets it. Pools are per (database, user), so a web transaction only ever runs on a
connection set up for the web. The bare ``<name>`` has the server's own defaults.

Nothing here reads Django's settings: the timeouts come from the environment
(atb_site/db/timeouts.py), as the settings' do, so devservices can run it before Django loads.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from atb_site.db import timeouts

# PgBouncer refuses to run as root; as root it is told to drop to this user.
RUN_AS_WHEN_ROOT = "nobody"


class PgBouncerError(RuntimeError):
    """PgBouncer is not installed, or did not start; the message says why."""


def binary() -> str | None:
    """The ``pgbouncer`` program: on PATH, or where Debian's package puts it."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    debian = Path("/usr/sbin/pgbouncer")
    return str(debian) if debian.is_file() else None


@dataclass(frozen=True)
class Server:
    """The PostgreSQL server PgBouncer connects to, from its URL."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
        )


def kind_database(name: str, kind: str) -> str:
    """The PgBouncer database of ``kind``'s processes for the server's database ``name``."""
    return f"{name}__{kind}"


def kind_queries(
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each kind's ``connect_query``: the ``SET``s of its timeouts and JIT."""
    configured = timeouts.from_environment(environ)
    jit = timeouts.jit_from_environment(environ)
    return {
        kind: "; ".join(
            f"SET {name} = {value}"
            for name, value in timeouts.settings_of(configured[kind], jit=jit).items()
        )
        for kind in timeouts.KINDS
    }


def config_text(
    server: Server,
    *,
    databases: Iterable[str],
    listen_addr: str,
    port: int,
    auth_file: Path,
    queries: Mapping[str, str],
    pool_size: int = 20,
) -> str:
    """``pgbouncer.ini``: transaction pooling, each of ``databases`` bare and once per kind."""
    target = f"host={server.host} port={server.port}"
    # Any other name: the server's database of that name, with its defaults (scratch databases).
    lines = ["[databases]", f"* = {target}"]
    for name in dict.fromkeys(databases):
        lines.append(f"{name} = {target} dbname={name}")
        for kind, query in queries.items():
            alias = kind_database(name, kind)
            lines.append(f"{alias} = {target} dbname={name} connect_query='{query}'")
    lines += [
        "",
        "[pgbouncer]",
        f"listen_addr = {listen_addr}",
        f"listen_port = {port}",
        "unix_socket_dir =",
        f"auth_type = {'scram-sha-256' if server.password else 'trust'}",
        f"auth_file = {auth_file}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 1000",
        # What psycopg and Django may send at start-up that PgBouncer does not track itself.
        "ignore_startup_parameters = extra_float_digits",
        # SHOW commands (read-only) on the console, the virtual database "pgbouncer".
        f"stats_users = {server.user}",
        # A transaction left open is the server's business (idle_in_transaction_session_timeout).
        "idle_transaction_timeout = 0",
        "server_reset_query =",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ]
    return "\n".join(lines)


def userlist_text(server: Server) -> str:
    """``userlist.txt``: the server's user, with its password for PgBouncer's own logins."""
    return f'"{server.user}" "{server.password}"\n'


@dataclass
class PgBouncer:
    """A PgBouncer child process in front of ``server_url``, listening on a free loopback port,
    its files in ``directory``. Stopped by its pid (SIGINT, then SIGKILL)."""

    server_url: str
    directory: Path
    databases: list[str] = field(default_factory=list)
    listen_addr: str = "127.0.0.1"
    port: int = 0
    environ: Mapping[str, str] | None = None
    pool_size: int = 20
    process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> Server:
        return Server.from_url(self.server_url)

    @property
    def log_path(self) -> Path:
        return self.directory / "pgbouncer.log"

    def url(self, dbname: str | None = None) -> str:
        """A URL of ``dbname`` (by default the server URL's) through this PgBouncer."""
        server = self.server
        auth = quote(server.user, safe="")
        if server.password:
            auth += ":" + quote(server.password, safe="")
        name = quote(dbname or server.dbname, safe="")
        return f"postgres://{auth}@127.0.0.1:{self.port}/{name}"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = _free_port()
        server = self.server
        auth_file = self.directory / "userlist.txt"
        auth_file.write_text(userlist_text(server))
        auth_file.chmod(0o600)
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            config_text(
                server,
                databases=[server.dbname, *self.databases],
                listen_addr=self.listen_addr,
                port=self.port,
                auth_file=auth_file,
                queries=kind_queries(self.environ),
                pool_size=self.pool_size,
            )
        )
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS_WHEN_ROOT)
            for path in (self.directory, auth_file, ini):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return ini

    def command(self) -> list[str]:
        program = binary()
        if program is None:
            raise PgBouncerError(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer; `make test` "
                "installs it when it can)"
            )
        ini = self.write_config()
        as_root = ["-u", RUN_AS_WHEN_ROOT] if os.geteuid() == 0 else []
        return [program, *as_root, str(ini)]

    def start(self, *, seconds: float = 15) -> PgBouncer:
        command = self.command()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - pgbouncer with our own ini
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PgBouncerError(f"pgbouncer exited: {self.log_tail()}")
            try:
                socket.create_connection((self.listen_addr, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise PgBouncerError(f"pgbouncer did not listen within {seconds:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # PgBouncer: shut down now
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m atb_site.db.pgbouncer", description=__doc__)
    parser.add_argument(
        "server_url",
        nargs="?",
        default=os.environ.get("DATABASE_DIRECT_URL", ""),
        help="the PostgreSQL server's URL (default: DATABASE_DIRECT_URL)",
    )
    parser.add_argument("--listen-addr", default="127.0.0.1", help="'*' for every address")
    parser.add_argument("--port", type=int, default=6432)
    parser.add_argument("--dir", type=Path, default=Path(".data/pgbouncer"))
    parser.add_argument("--database", action="append", default=[], help="another database")
    args = parser.parse_args(argv)
    if not args.server_url:
        parser.error("give the server's URL, or set DATABASE_DIRECT_URL")
    bouncer = PgBouncer(
        server_url=args.server_url,
        directory=args.dir.resolve(),
        databases=args.database,
        listen_addr=args.listen_addr,
        port=args.port,
    )
    try:
        command = bouncer.command()
    except PgBouncerError as exc:
        print(exc, file=sys.stderr)
        return 1
    os.execv(command[0], command)  # noqa: S606 - pgbouncer with our own ini, in the foreground


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
