"""`make manage ARGS="..."` runs a command next to `make run`: it uses the embedded servers
already running from this checkout's .data/ (this test run's own, or a `make run`'s), starts and
stops none of them, and ends without a traceback."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / ".data"
VENV = Path(sys.executable).parent.parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def running() -> dict[str, int]:
    """The pids of the embedded PostgreSQL and Redis running from .data/, if any."""
    pids = {}
    for name, path in (
        ("postgres", DATA / "postgres" / "postmaster.pid"),
        ("redis", DATA / "redis" / "redis.pid"),
    ):
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if alive(pid):
            pids[name] = pid
    return pids


def make_manage(args: str) -> subprocess.CompletedProcess[str]:
    # As a user runs it: no URLs, no Django variables. `-o install` keeps make from installing
    # requirements into the venv this test runs in (VENV); the command itself runs as written.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PG", "MAKE")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return subprocess.run(  # noqa: S603 - make with fixed arguments
        ["make", "-s", "-o", "install", "manage", f"VENV={VENV}", f"ARGS={args}"],  # noqa: S607
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_manage_check_uses_the_running_services_and_leaves_them_running() -> None:
    before = running()

    result = make_manage("check")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert result.stdout == "System check identified no issues (0 silenced).\n"
    names = {"postgres": "PostgreSQL", "redis": "Redis"}
    for server, name in names.items():
        if server in before:  # the usual case: this run's own server, reused and left running
            assert f"reusing the embedded {name} already running" in result.stderr
            assert f"started embedded {name}" not in result.stderr
            assert f"stopped embedded {name}" not in result.stderr
        else:  # this run's URL points elsewhere: make manage starts its own, then stops it
            assert f"started embedded {name}" in result.stderr
            assert f"stopped embedded {name}" in result.stderr
    assert running() == before
