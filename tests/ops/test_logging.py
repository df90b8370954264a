"""Production logs are one JSON object per line, from Django, gunicorn and Celery alike."""

import http.client
import io
import json
import logging
import os
import queue as queue_module
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from atb_site.celery import app as celery_app
from atb_site.logs import JsonFormatter, log_format, logging_config
from tests.ops.servers import free_port, gunicorn_serving

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "atb_site.settings.base",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3y-" + "Zq8#pL2v@Wn5$Rt9&Yx4*Mb7!Hc1^Jd6%Fg3" * 2,
    "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "INFO",
}


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "LOG_", "GUNICORN_", "WEB_CONCURRENCY", "PORT"))
    }
    return {**env, **PRODUCTION, **extra}


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (failing on the first line that is not one)."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        datetime.fromisoformat(entry["ts"])  # ISO-8601
        assert entry["ts"].endswith("+00:00"), entry["ts"]  # in UTC
        entries.append(entry)
    return entries


@pytest.mark.parametrize(
    ("debug", "requested", "expected"),
    [(False, "", "json"), (True, "", "plain"), (True, "JSON", "json"), (False, "plain", "plain")],
)
def test_the_log_format_is_json_in_production_unless_chosen(
    debug: bool, requested: str, expected: str
) -> None:
    assert log_format(debug=debug, requested=requested) == expected


def test_an_unknown_log_format_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"^LOG_FORMAT must be one of json, plain, not 'yaml'$"):
        log_format(debug=False, requested="yaml")


SCRIPT = """
import logging
from django.test import Client
log = logging.getLogger("atb.ops")
log.info("hello %s", "world", extra={"bot_id": "momentum_001", "attempt": 2})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("snapshot failed\\non two lines")
Client().get("/no-such-page/", HTTP_X_REQUEST_ID="req-7f3a")
"""


def test_django_logs_one_json_object_per_line_in_production() -> None:
    result = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", SCRIPT],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    # Log lines go to stderr: a command's own output keeps stdout to itself.
    assert result.stdout == ""
    entries = _json_lines(result.stderr)
    # Python warnings are log lines too (here whitenoise's: nothing collected into STATIC_ROOT).
    warnings = [e for e in entries if e["logger"] == "py.warnings"]
    assert all(e["level"] == "warning" for e in warnings)
    hello, failed, not_found = [e for e in entries if e not in warnings]
    assert {k: v for k, v in hello.items() if k != "ts"} == {
        "level": "info",
        "logger": "atb.ops",
        "message": "hello world",
        "bot_id": "momentum_001",
        "attempt": 2,
    }
    assert (failed["level"], failed["logger"], failed["message"]) == (
        "error",
        "atb.ops",
        "snapshot failed\non two lines",
    )
    assert failed["exception"].startswith("Traceback (most recent call last):\n")
    assert failed["exception"].endswith("ZeroDivisionError: division by zero")
    assert {k: v for k, v in not_found.items() if k != "ts"} == {
        "level": "warning",
        "logger": "django.request",
        "message": "Not Found: /no-such-page/",
        "method": "GET",
        "path": "/no-such-page/",
        "request_id": "req-7f3a",
        "status": 404,
    }


def test_logs_are_plain_text_when_asked() -> None:
    result = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", SCRIPT],
        cwd=ROOT,
        env=_production_env(LOG_FORMAT="plain"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    hello = next(line for line in result.stderr.splitlines() if "atb.ops" in line)
    assert hello.endswith(" INFO atb.ops hello world")
    with pytest.raises(json.JSONDecodeError):
        json.loads(hello)


def test_gunicorn_error_and_access_logs_are_json(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "gunicorn.log"
    env = _production_env(PORT=str(port), WEB_CONCURRENCY="1")
    with out.open("w") as handle, gunicorn_serving(env=env, port=port, output=handle) as server:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/health/live?probe=1", headers={"X-Request-ID": "req-gunicorn-1"})
            status = conn.getresponse().status
        finally:
            conn.close()

    assert status == 200
    entries = _json_lines(out.read_text())
    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    assert len(access) == 1
    assert {k: access[0][k] for k in ("level", "method", "path", "query", "status")} == {
        "level": "info",
        "method": "GET",
        "path": "/health/live",
        "query": "probe=1",
        "status": 200,
    }
    assert access[0]["request_id"] == "req-gunicorn-1"
    assert access[0]["remote_addr"] == "127.0.0.1"
    assert access[0]["message"].startswith('127.0.0.1 "GET /health/live?probe=1 HTTP/1.1" 200 ')
    messages = [e["message"] for e in entries if e["logger"] == "gunicorn.error"]
    assert f"Listening at: http://0.0.0.0:{port} ({server.pid})" in messages
    assert "Shutting down: Master" in messages


def _procfile_command(process: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, command = line.split(": ", 1)
        if name == process:
            return shlex.split(command)
    raise AssertionError(f"no {process} in the Procfile")


def _is_ready(line: str, process: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    message = entry.get("message", "") if isinstance(entry, dict) else ""
    return message.endswith(" ready.") if process == "worker" else message == "beat: Starting..."


def _stop(child: subprocess.Popen[str]) -> None:
    """SIGTERM the child's whole session, SIGKILL it if it lingers: never leave one behind."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_celery_worker_and_beat_log_json(process: str, request: pytest.FixtureRequest) -> None:
    command = _procfile_command(process)
    command[0] = str(BIN / command[0])
    env = _production_env()
    if process == "worker":
        queue = f"atb-logging-test-{uuid.uuid4().hex[:8]}"  # takes none of anyone else's tasks
        command += ["--pool", "solo", "-Q", queue]
    else:
        # Beat keeps its schedule in the database: the test database, emptied afterwards.
        request.getfixturevalue("transactional_db")
        url = urlsplit(env["DATABASE_URL"])
        name = connection.settings_dict["NAME"]
        env["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}"))
    child = subprocess.Popen(  # noqa: S603 - the Procfile's command, our own celery
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as the platform collects them: together
        text=True,
        start_new_session=True,
    )
    # A reader thread, so that a child that goes quiet before it is ready fails the test at the
    # deadline instead of blocking the run on a read that never returns.
    received: queue_module.Queue[str | None] = queue_module.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            received.put(line)
        received.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    lines: list[str] = []
    ready = False
    try:
        deadline = time.monotonic() + 60
        while not ready and time.monotonic() < deadline:
            try:
                line = received.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue_module.Empty:
                break
            if line is None:
                break
            lines.append(line)
            ready = _is_ready(line, process)
    finally:
        _stop(child)
        reader.join(timeout=10)
    rest_lines = []
    while not received.empty():
        item = received.get_nowait()
        if item is not None:
            rest_lines.append(item)
    assert ready, "".join(lines + rest_lines)[-4000:]

    entries = _json_lines("".join(lines))
    # Celery prints (not logs) its shutdown notice; everything else is a JSON line.
    rest = "".join(rest_lines)
    notices = [line for line in rest.splitlines() if line and not line.startswith("{")]
    assert all(line.startswith(f"{process}: ") for line in notices), notices
    _json_lines("\n".join(line for line in rest.splitlines() if line.startswith("{")))
    loggers = {e["logger"] for e in entries}
    if process == "worker":
        assert "celery.apps.worker" in loggers
        assert entries[-1]["message"].endswith(" ready.")
        assert any(e["logger"].startswith("celery.worker.consumer") for e in entries)
    else:
        assert entries[-1] == {**entries[-1], "logger": "celery.beat", "level": "info"}
        assert entries[-1]["message"] == "beat: Starting..."


def test_a_task_s_log_lines_carry_its_id_and_name() -> None:
    stream = logging.StreamHandler(stream=io.StringIO())
    stream.setFormatter(JsonFormatter())
    logger = logging.getLogger("atb.ops.task-test")
    logger.addHandler(stream)
    logger.propagate = False

    @celery_app.task(name="tests.ops.log_inside_a_task")
    def log_inside_a_task() -> None:
        logger.warning("inside")

    try:
        log_inside_a_task.apply(task_id="task-42")
        logger.warning("outside")
    finally:
        logger.removeHandler(stream)
        logger.propagate = True

    inside, outside = _json_lines(stream.stream.getvalue())
    assert (inside["task_id"], inside["task_name"]) == ("task-42", "tests.ops.log_inside_a_task")
    assert "task_id" not in outside


def test_the_config_sends_django_and_gunicorn_loggers_through_the_one_handler() -> None:
    config = logging_config(fmt="json", level="debug")
    assert config["root"] == {"handlers": ["console"], "level": "DEBUG"}
    assert config["handlers"]["console"]["stream"] == "ext://sys.stderr"
    for name in ("django", "django.server", "gunicorn.error", "gunicorn.access"):
        assert config["loggers"][name]["handlers"] == []
        assert config["loggers"][name]["propagate"] is True
