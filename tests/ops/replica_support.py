"""A real streaming replica of the test server, for tests/ops/test_read_replica.py.

``pg_basebackup -R -X stream`` copies the server the tests run on (the embedded PostgreSQL 18,
or whatever DATABASE_URL names) into a temporary folder, and that copy starts as a hot standby
on a free port of 127.0.0.1 with the binaries of the server's own major version, replaying the
primary's WAL as it streams. Stopped by its postmaster's PID (``kill``); the shared server is
only read from (a base backup and a replication connection), never reconfigured.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from audit.backups.pg import BackupError, pg_tools_for
from tests.ops.servers import PG_SYSTEM_USER, free_port

# Settings a hot standby must hold at least as high as its primary (it refuses to start
# otherwise); the embedded server gets some of them on its command line, not in its files.
STANDBY_MINIMUMS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


class ReplicaUnavailable(Exception):
    """Why no replica of this server can be made here (no replication rights, no binaries)."""


@dataclass
class Replica:
    folder: Path
    port: int
    bin: Path
    run_as: str | None
    options: str = ""

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def connect(self, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def all_pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        children = subprocess.run(  # noqa: S603
            ["/usr/bin/pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    @staticmethod
    def signal_all(pids: list[int], signum: int) -> None:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    def start(self) -> None:
        _run(
            self.run_as,
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "server.log"),
            "-o",
            self.options,
            "start",
        )

    def kill(self) -> None:
        """SIGKILL the postmaster by PID; its children see it gone and exit (waited for, so
        that it can start again on the same folder)."""
        pids = self.all_pids()
        if not pids:
            return
        with suppress(ProcessLookupError):
            os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        for pid in pids:
            while _alive(pid):
                assert time.monotonic() < deadline, f"process {pid} of the replica lives on"
                time.sleep(0.05)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.postmaster_pid() is None:
            return
        subprocess.run(  # noqa: S603 - the server's own pg_ctl, fixed arguments
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            user=self.run_as,
            check=False,
            timeout=60,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent, which may be gone) has left for good.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _server_facts(params: dict[str, Any]) -> tuple[int, dict[str, str]]:
    with psycopg.connect(**params, autocommit=True) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        values = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in STANDBY_MINIMUMS
        }
    return version, values


def _bin_of(version: int) -> Path:
    try:
        tools = pg_tools_for("postgres", server_version=version)
    except BackupError as exc:
        raise ReplicaUnavailable(str(exc)) from exc
    same = [tool for tool in tools if tool.major == version // 10000]
    if not same:
        raise ReplicaUnavailable(f"no postgres binary of major version {version // 10000}")
    return same[0].path.parent


def _run(run_as: str | None, *command: str) -> None:
    result = subprocess.run(  # noqa: S603 - the server's own tools, fixed arguments
        list(command), capture_output=True, text=True, user=run_as, check=False, timeout=300
    )
    if result.returncode != 0:
        raise ReplicaUnavailable(f"{Path(command[0]).name} failed: {result.stderr.strip()}")


@contextmanager
def streaming_replica(params: dict[str, Any]) -> Iterator[Replica]:
    """A hot standby of the server ``params`` (psycopg's connection parameters) connects to."""
    version, minimums = _server_facts(params)
    bin_dir = _bin_of(version)
    run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="atb-replica-"))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    replica = Replica(folder=folder, port=free_port(), bin=bin_dir, run_as=run_as)
    try:
        _run(
            run_as,
            str(bin_dir / "pg_basebackup"),
            f"--host={params['host']}",
            f"--port={params['port']}",
            f"--username={params['user']}",
            f"--pgdata={replica.data}",
            "--write-recovery-conf",  # -R: standby.signal and primary_conninfo
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
            "--no-password",
        )
        replica.options = " ".join(
            [
                "-h 127.0.0.1",
                f"-p {replica.port}",
                "-c unix_socket_directories=''",
                "-c fsync=off",
                "-c hot_standby=on",
                # Long queries on the replica are cancelled rather than holding replay back.
                "-c max_standby_streaming_delay=1s",
                *(f"-c {name}={value}" for name, value in minimums.items()),
            ]
        )
        replica.start()
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(folder, ignore_errors=True)


def wait_until_replayed(primary: psycopg.Connection[Any], replica: Replica, dbname: str) -> None:
    """Until the replica has replayed every transaction the primary has committed now.

    A commit made with ``synchronous_commit=off`` (devservices --fast runs the server so) returns
    before its WAL is written, and the WAL writer, on a loaded machine, may not have written it
    yet: ``pg_current_wal_lsn()``, the position written, is then before it, and a replica that
    has replayed that far has none of those rows. A transaction of our own that writes WAL (a
    logical decoding message, read by no one), committed with ``synchronous_commit=on``, flushes
    the WAL up to its commit record, so past every commit before it: the position flushed then
    is the target. (A transaction that wrote no WAL commits asynchronously whatever the
    setting.)"""
    with primary.transaction():
        primary.execute("SET LOCAL synchronous_commit = on")
        primary.execute("SELECT pg_logical_emit_message(true, 'atb-tests', '')")
    target = primary.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 30
    with replica.connect(dbname) as conn:
        while True:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target)]
            ).fetchone()[0]  # type: ignore[index]
            if done:
                return
            assert time.monotonic() < deadline, "the replica did not catch up in 30 s"
            time.sleep(0.05)
