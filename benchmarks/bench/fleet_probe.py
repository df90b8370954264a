"""What the fleet run watches besides its answers: CPU time of the PostgreSQL server, of
gunicorn and of the client itself, the machine's CPU, and pg_stat_activity's wait events.

CPU comes from /proc/<pid>/stat: a process tree's time is its root's utime + stime +
cutime + cstime (the last two hold its children that ended and were reaped: a backend whose
connection closed, a gunicorn worker replaced after max_requests) plus the utime + stime of
each living child. The difference between the end and the start of the run is the tree's CPU
over it, whatever came and went in between.
"""

import asyncio
import contextlib
import os
import resource
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")
WAIT_SAMPLE_SECONDS = 0.25
CPU_EVERY = 4  # wait samples: CPU once a second


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command may hold spaces and parentheses: the fields start after the last ")".
    return text[text.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def tree_cpu_seconds(root: int) -> float | None:
    """CPU seconds of ``root`` and its children, ended ones included; None if it is not here."""
    fields = _stat(root)
    if fields is None:
        return None
    # Fields 14-17 of proc(5) (utime stime cutime cstime): 11-14 here, after pid and comm.
    ticks = sum(int(v) for v in fields[11:15])
    for entry in PROC.iterdir():
        if entry.name.isdigit() and entry.name != str(root):
            child = _stat(int(entry.name))
            if child is not None and child[1] == str(root):
                ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def children(root: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(root):
                found.append(int(entry.name))
    return found


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # steal included, guest already counted in user
    return total - idle, total


def postmaster_pid(conn: psycopg.Connection[Any]) -> int | None:
    """The PostgreSQL server's postmaster, when it runs on this machine: our backend's parent."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    backend = int(row[0]) if row else 0
    parent = parent_of(backend)
    if parent is None:
        return None
    with contextlib.suppress(OSError):
        if b"postgres" in (PROC / str(parent) / "cmdline").read_bytes():
            return parent
    return None


class CpuMeter:
    """CPU seconds of each named process tree, of this process and of the machine, over a run."""

    def __init__(self, trees: dict[str, int | None]) -> None:
        self.trees = trees
        self.start: dict[str, float | None] = {}
        self.began_at_tick = 0
        # Called once the start is taken (WaitSampler.restart_backends).
        self.on_begin: list[Any] = []
        self.wall = 0.0
        self._wall_start = time.perf_counter()
        # (seconds since begin, machine busy jiffies, machine jiffies, CPU s of the run's side)
        self.samples: list[tuple[float, int, int, float]] = []

    def begin(self) -> None:
        self._wall_start = time.perf_counter()
        self.began_at_tick = boot_ticks_now()
        self.sample()
        self.start = {name: _tree(pid) for name, pid in self.trees.items()}
        self.start["client"] = client_cpu_seconds()
        self._machine = machine_busy_ticks()
        for hook in self.on_begin:
            hook()

    def sample(self) -> None:
        """Where the CPU went since the last sample: the run's processes or the machine's
        others (the shared machine's neighbours show here)."""
        busy, total = machine_busy_ticks()
        ours = sum(filter(None, (_tree(pid) for pid in self.trees.values())))
        at = time.perf_counter() - self._wall_start
        self.samples.append((at, busy, total, ours + client_cpu_seconds()))

    def windows(self, seconds: float) -> list[dict[str, float]]:
        """Cores busy in each window of ``seconds``: the whole machine's and the run's own."""
        cpus = os.cpu_count() or 1
        found: list[dict[str, float]] = []
        edge = 0.0
        previous = None
        for sample in self.samples:
            if previous is None:
                previous = sample
                continue
            if sample[0] >= edge + seconds or sample is self.samples[-1]:
                machine = (sample[1] - previous[1]) / max(1, sample[2] - previous[2]) * cpus
                ours = (sample[3] - previous[3]) / max(1e-9, sample[0] - previous[0])
                found.append({"machine_cores": machine, "run_cores": ours})
                previous = sample
                edge += seconds
        return found

    def end(self) -> dict[str, Any]:
        self.wall = time.perf_counter() - self._wall_start
        ended = {name: _tree(pid) for name, pid in self.trees.items()}
        ended["client"] = client_cpu_seconds()
        busy, total = machine_busy_ticks()
        cpus = os.cpu_count() or 1
        figures: dict[str, Any] = {"wall_seconds": self.wall}
        for name, value in ended.items():
            before = self.start.get(name)
            seconds = None if value is None or before is None else value - before
            figures[name] = {
                "cpu_seconds": seconds,
                # Cores kept busy on average: 1.0 is one core all the time.
                "cores": None if seconds is None else seconds / self.wall,
            }
        machine_share = (busy - self._machine[0]) / max(1, total - self._machine[1])
        figures["machine"] = {"cpus": cpus, "busy_share": machine_share}
        ours = [figures[name]["cpu_seconds"] for name in ended]
        measured = sum(s for s in ours if s is not None)
        database = figures.get("postgresql", {}).get("cpu_seconds")
        figures["database_share"] = (
            database / measured if database is not None and measured else None
        )
        return figures


def boot_ticks_now() -> int:
    """Clock ticks since the machine booted, the unit of a process's start time in
    /proc/<pid>/stat (its field 22)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLOCK_TICKS)


def _tree(pid: int | None) -> float | None:
    return None if pid is None else tree_cpu_seconds(pid)


class WaitSampler:
    """pg_stat_activity of one database every WAIT_SAMPLE_SECONDS, in a thread of its own:
    the active backends counted by wait event (none: on CPU), and the sessions idle in a
    transaction."""

    def __init__(
        self, conn: psycopg.Connection[Any], database: str, meter: CpuMeter | None = None
    ) -> None:
        self.conn = conn
        self.database = database
        self.meter = meter
        self.samples = 0
        self.waits: Counter[str] = Counter()
        self.sessions: Counter[str] = Counter()
        self.backends: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-wait-sampler", daemon=True)

    def __enter__(self) -> "WaitSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(WAIT_SAMPLE_SECONDS):
            rows = self.conn.execute(
                "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'",
                [self.database],
            ).fetchall()
            self.samples += 1
            if self.meter is not None and self.meter.start and self.samples % CPU_EVERY == 0:
                self.meter.sample()
            with self._lock:
                begun = self.meter is not None and bool(self.meter.start)
                for pid, state, kind, event in rows:
                    self._backend_cpu(pid, begun=begun)
                    self.sessions[state or "unknown"] += 1
                    if state == "active":
                        wait = "CPU (no wait event)" if kind is None else f"{kind}:{event}"
                        self.waits[wait] += 1

    def restart_backends(self) -> None:
        """The run starts now: each backend seen so far counts from its CPU at this moment, not
        at its last sample (up to WAIT_SAMPLE_SECONDS of the warm-up before it)."""
        with self._lock:
            for pid in list(self.backends):
                fields = _stat(pid)
                if fields is None:
                    del self.backends[pid]
                    continue
                now = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                self.backends[pid] = (now, now)

    def _backend_cpu(self, pid: int, *, begun: bool) -> None:
        """Track the CPU of one backend of the run's database: from the start of the run (or
        from its birth, for one that connected during it) to its last sample. A backend first
        seen after the start but born before it (in the last moments of the warm-up, between
        two samples) counts from its first sample: its CPU before that is not known to be the
        run's, so the figure errs low, never above the server's own."""
        fields = _stat(pid)
        if fields is None:
            return
        now = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        first, _ = self.backends.get(pid, (None, None))
        if first is None or not begun:
            born_in_run = (
                begun and self.meter is not None and int(fields[19]) >= self.meter.began_at_tick
            )
            first = 0.0 if born_in_run else now
        self.backends[pid] = (first, now)

    @property
    def backends_cpu_seconds(self) -> float:
        """CPU of the run's own backends: on a server shared with other databases, the part of
        the server's CPU that is the run's (its background processes left out)."""
        return sum(last - first for first, last in self.backends.values())

    def as_json(self) -> dict[str, Any]:
        n = max(1, self.samples)
        return {
            "samples": self.samples,
            "every_seconds": WAIT_SAMPLE_SECONDS,
            "backends": len(self.backends),
            "backends_cpu_seconds": self.backends_cpu_seconds,
            # Average backends in each state, and active ones in each wait, per sample.
            "sessions": {k: round(v / n, 3) for k, v in self.sessions.most_common()},
            "active_waits": {k: round(v / n, 3) for k, v in self.waits.most_common(12)},
        }


class LoopLag:
    """How late the event loop wakes a 50 ms sleeper: a busy client shows here first."""

    EVERY = 0.05

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self, until: float) -> None:
        while time.perf_counter() < until:
            asked = time.perf_counter()
            await asyncio.sleep(self.EVERY)
            self.lags.append(time.perf_counter() - asked - self.EVERY)
