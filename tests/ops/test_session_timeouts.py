"""Each kind of process gets its own PostgreSQL timeouts, and every connection TCP keepalives:
read back from a real connection (``SHOW``, and the parameters libpq connected with) of gunicorn's
configuration, a real Celery worker (a pool child, a fork of the worker), beat's start-up and a
management command. A command has no statement or lock timeout: migrations, backups and the bench
must never be cut short by a web-sized one."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from tests.ops.session_probe import write_session_report
from tests.ops.test_logging import _procfile_command, _stop

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}

REPORT = (
    "import json; from tests.ops.session_probe import session_report; "
    "print(json.dumps(session_report()))"
)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("DATABASE_") and k != "DATABASE_URL") and k != "GUNICORN_TIMEOUT"
    }
    return {**env, "DJANGO_SETTINGS_MODULE": "atb_site.settings.test", **extra}


def _python(*argv: str, returncode: int, **env: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *argv],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == returncode, run.stderr[-3000:]
    return run


def _report(*argv: str, **env: str) -> dict[str, Any]:
    """What ``python *argv`` printed last: the session report (tests/ops/session_probe.py)."""
    return dict(json.loads(_python(*argv, returncode=0, **env).stdout.splitlines()[-1]))


def _refusal(code: str, **env: str) -> str:
    """The last line ``python -c code`` wrote as it failed."""
    return _python("-c", code, returncode=1, **env).stderr.strip().splitlines()[-1]


# As gunicorn starts: its configuration first, then the app.
AS_GUNICORN = (
    f"import runpy; runpy.run_path('gunicorn.conf.py'); import django; django.setup(); {REPORT}"
)


def test_gunicorn_makes_a_web_process_with_short_timeouts() -> None:
    assert _report("-c", AS_GUNICORN) == {
        "kind": "web",
        "statement_timeout": "10s",
        "lock_timeout": "5s",
        "idle_in_transaction_session_timeout": "30s",
        **KEEPALIVES,
    }


def test_the_timeouts_and_keepalives_come_from_the_environment() -> None:
    assert _report(
        "-c",
        AS_GUNICORN,
        DATABASE_STATEMENT_TIMEOUT_WEB="7.5",
        DATABASE_LOCK_TIMEOUT_WEB="0",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_WEB="120",
        DATABASE_STATEMENT_TIMEOUT_WORKER="1",  # another kind's: not this one's
        DATABASE_KEEPALIVES_IDLE="45",
        DATABASE_TCP_USER_TIMEOUT="20",
    ) == {
        "kind": "web",
        "statement_timeout": "7500ms",
        "lock_timeout": "0",
        "idle_in_transaction_session_timeout": "2min",
        **KEEPALIVES,
        "keepalives_idle": "45",
        "tcp_user_timeout": "20000",
    }


def test_a_management_command_has_no_statement_or_lock_timeout() -> None:
    assert _report("manage.py", "shell", "-c", REPORT) == {
        "kind": "command",
        "statement_timeout": "0",
        "lock_timeout": "0",
        "idle_in_transaction_session_timeout": "1h",
        **KEEPALIVES,
    }


def test_beat_closes_the_connection_it_opened_before_it_knew_and_reconnects_as_beat() -> None:
    # Beat's scheduler reads the schedule before beat_init is sent (celery/beat.py).
    code = (
        "import json, django; django.setup(); from django.db import connection; "
        "from celery import signals; "
        "before = connection.cursor().connection.info.backend_pid; "
        "signals.beat_init.send(sender=None); "
        f"{REPORT.replace('print(json.dumps(session_report()))', '')}"
        "report = session_report(); "
        "report['same_connection'] = connection.connection.info.backend_pid == before; "
        "print(json.dumps(report))"
    )
    assert _report("-c", code) == {
        "kind": "beat",
        "statement_timeout": "30s",
        "lock_timeout": "10s",
        "idle_in_transaction_session_timeout": "1min",
        **KEEPALIVES,
        "same_connection": False,
    }


def test_a_celery_worker_s_pool_child_has_the_worker_s_timeouts(tmp_path: Path) -> None:
    queue = f"atb-session-test-{uuid.uuid4().hex[:8]}"  # takes none of anyone else's tasks
    command = _procfile_command("worker")
    command[0] = str(BIN / command[0])
    command += ["--pool", "prefork", "--concurrency", "1", "-Q", queue]
    command += ["-I", "tests.ops.session_probe"]
    report = tmp_path / "report.json"
    worker = subprocess.Popen(  # noqa: S603 - the Procfile's command, our own celery
        command,
        cwd=ROOT,
        env=_env(LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        write_session_report.apply_async(args=(str(report),), queue=queue)
        deadline = time.monotonic() + 60
        while not report.exists() and time.monotonic() < deadline:
            assert worker.poll() is None
            time.sleep(0.2)
        assert report.exists(), "the worker never ran the task"
    finally:
        _stop(worker)
    assert json.loads(report.read_text()) == {
        "kind": "worker",
        "statement_timeout": "30min",
        "lock_timeout": "1min",
        "idle_in_transaction_session_timeout": "10min",
        **KEEPALIVES,
    }


@pytest.mark.parametrize(
    ("deadline", "message"),
    [
        (
            "30",
            "DATABASE_REQUEST_DEADLINE (30 s) must be shorter than GUNICORN_TIMEOUT (30 s), so "
            "that a request answers 503 before its worker is killed",
        ),
        ("soon", "DATABASE_REQUEST_DEADLINE must be a number of seconds, not 'soon'"),
        ("nan", "DATABASE_REQUEST_DEADLINE must be 0 (none) or a number of seconds, not nan"),
    ],
)
def test_gunicorn_refuses_a_deadline_that_would_not_beat_its_worker_timeout(
    deadline: str, message: str
) -> None:
    refusal = _refusal(
        "import runpy; runpy.run_path('gunicorn.conf.py')", DATABASE_REQUEST_DEADLINE=deadline
    )
    assert refusal == f"gunicorn: configuration error: {message}"


def test_a_negative_timeout_stops_start_up_naming_the_variable() -> None:
    assert _refusal("import django; django.setup()", DATABASE_LOCK_TIMEOUT_WORKER="-1") == (
        "django.core.exceptions.ImproperlyConfigured: DATABASE_LOCK_TIMEOUT_WORKER must be 0 "
        "(none) or a number of seconds, not -1.0"
    )


@pytest.mark.django_db
def test_sessions_start_with_jit_off_unless_database_jit() -> None:
    from django.db import connection

    from atb_site.db.session import startup_options

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
    with override_settings(DATABASE_JIT=True):
        assert "jit" not in startup_options("web")
        assert "jit" not in connection.get_connection_params().get("options", "")
    assert "-c jit=off" in connection.get_connection_params()["options"]
    with override_settings(DATABASE_PGBOUNCER=True):
        assert startup_options("web") == ""
