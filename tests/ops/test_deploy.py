"""The deploy's pieces: the Procfile, gunicorn's settings from the environment, and static files
served by whitenoise with hashed names, compressed and cached for good."""

import gzip
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client, override_settings
from gunicorn.app.wsgiapp import WSGIApplication  # type: ignore[import-untyped]

from atb_site.gunicorn_worker import WatchedThreadWorker

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
GUNICORN_VARIABLES = (
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_WORKER",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_MAX_REQUESTS_JITTER",
    "GUNICORN_PRELOAD",
    "GUNICORN_ACCESS_LOG_FORMAT",
    "GUNICORN_CMD_ARGS",
    "FORWARDED_ALLOW_IPS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "DJANGO_DEBUG",
)


def test_the_procfile_runs_release_web_worker_and_beat() -> None:
    lines = (ROOT / "Procfile").read_text().splitlines()
    processes = dict(line.split(": ", 1) for line in lines)
    assert processes == {
        # --direct: behind PgBouncer, on the server itself (DATABASE_DIRECT_URL).
        "release": "python manage.py migrate --noinput --direct "
        "&& python manage.py setup_periodic_tasks",
        "web": "gunicorn atb_site.wsgi",
        # --quiet: no start-up banner, so that the output is log lines only (JSON in production).
        "worker": "celery -A atb_site --quiet worker",
        # --pidfile=: a restarted container may reuse the old pid, which a pid file would refuse.
        "beat": "celery -A atb_site --quiet beat --pidfile= "
        "--scheduler django_celery_beat.schedulers:DatabaseScheduler",
    }


def dockerfile() -> tuple[str, dict[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, and its ARG defaults."""
    lines = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    return text, args


def test_railway_builds_every_service_with_the_dockerfile() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    # Nothing per-service here: the file applies to web, worker and beat alike.
    assert "deploy" not in config
    text, _ = dockerfile()
    web = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())["web"]
    assert f"CMD {json.dumps(web.split())}" in text
    assert "RUN pip install -r requirements.txt" in text
    assert re.search(r"^RUN .*python manage.py collectstatic --noinput$", text, re.MULTILINE)


def test_the_image_gets_the_postgresql_client_tools_of_one_documented_major_version() -> None:
    text, args = dockerfile()
    major = args["PG_MAJOR"]
    assert major.isdigit() and int(major) >= 15
    assert re.findall(r"^ARG PG_MAJOR\b.*$", text, re.MULTILINE) == [
        f"ARG PG_MAJOR={major}",  # before FROM: the one default
        "ARG PG_MAJOR",  # after FROM: in scope for the build steps
    ]
    assert "PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin" in text
    assert "https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" in text
    assert "FROM python:3.12-slim-bookworm" in text
    assert (
        'apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" pgbouncer'
        in text
    )
    for tool in ("pg_dump", "pg_restore", "psql"):  # the build fails if one is missing
        assert f'"${{PG_BIN_DIR}}/{tool}" --version' in text
    readme = (ROOT / "README.md").read_text()
    assert f"`PG_MAJOR` | {major} |" in readme
    assert "setup_railway --verify" in readme


def test_debian_puts_those_tools_where_pg_bin_dir_says() -> None:
    """On this machine (Debian), the package the Dockerfile installs for PostgreSQL 15 owns the
    three programs at the path the image's PG_BIN_DIR names."""
    found = {}
    for tool in ("pg_dump", "pg_restore", "psql"):
        path = f"/usr/lib/postgresql/15/bin/{tool}"
        owner = (
            subprocess.run(  # noqa: S603 - fixed arguments
                ["/usr/bin/dpkg", "-S", path], capture_output=True, text=True, check=False
            )
            if os.path.exists("/usr/bin/dpkg")
            else None
        )
        found[tool] = owner.stdout.strip() if owner and owner.returncode == 0 else ""
    if not all(found.values()):
        reason = f"Debian's postgresql-client-15 is not installed here ({found})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    assert found == {
        tool: f"postgresql-client-15: /usr/lib/postgresql/15/bin/{tool}"
        for tool in ("pg_dump", "pg_restore", "psql")
    }


def _gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """gunicorn's own configuration, loaded as ``gunicorn atb_site.wsgi`` loads it from
    gunicorn.conf.py, with exactly ``env`` among the variables it reads."""
    for name in GUNICORN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", str(GUNICORN_CONF), "atb_site.wsgi"])
    return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg


WATCHED_THREADS = "atb_site.gunicorn_worker.WatchedThreadWorker"


def test_gunicorn_takes_its_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _gunicorn_config(
        monkeypatch,
        PORT="9123",
        WEB_CONCURRENCY="6",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="45",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        GUNICORN_KEEPALIVE="75",
        GUNICORN_MAX_REQUESTS="500",
        GUNICORN_MAX_REQUESTS_JITTER="50",
        GUNICORN_PRELOAD="false",
        GUNICORN_ACCESS_LOG_FORMAT="%(s)s %(U)s",
        LOG_FORMAT="json",
        LOG_LEVEL="warning",
    )
    assert cfg.bind == ["0.0.0.0:9123"]
    assert (cfg.workers, cfg.threads, cfg.worker_class_str) == (6, 4, WATCHED_THREADS)
    assert (cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (45, 20, 75)
    assert (cfg.max_requests, cfg.max_requests_jitter, cfg.preload_app) == (500, 50, False)
    assert (cfg.accesslog, cfg.errorlog, cfg.access_log_format) == ("-", "-", "%(s)s %(U)s")
    assert cfg.loglevel == "warning"
    assert cfg.forwarded_allow_ips == ["*"]
    assert cfg.control_socket_disable is True
    formatter = cfg.logconfig_dict["handlers"]["console"]["formatter"]
    assert (formatter, cfg.logconfig_dict["root"]["level"]) == ("json", "WARNING")


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _gunicorn_config(monkeypatch)
    cpus = len(os.sched_getaffinity(0))
    assert cfg.bind == ["0.0.0.0:8000"]
    assert (cfg.workers, cfg.threads) == (min(2 * cpus + 1, 4), 1)
    # Threaded, keeping connections alive, watched (tests/ops/test_stuck_request.py).
    assert (cfg.worker_class_str, cfg.worker_class) == (WATCHED_THREADS, WatchedThreadWorker)
    assert (cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (30, 30, 5)
    assert (cfg.max_requests, cfg.max_requests_jitter, cfg.preload_app) == (10_000, 5_000, True)
    assert cfg.access_log_format == '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
    # Production (DJANGO_DEBUG unset) logs JSON; debug logs plain text.
    assert cfg.logconfig_dict["handlers"]["console"]["formatter"] == "json"
    debug = _gunicorn_config(monkeypatch, DJANGO_DEBUG="true")
    assert debug.logconfig_dict["handlers"]["console"]["formatter"] == "plain"


def test_gunicorn_worker_chooses_threaded_or_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _gunicorn_config(monkeypatch, GUNICORN_WORKER="Threaded")
    assert (cfg.threads, cfg.worker_class_str) == (1, WATCHED_THREADS)
    assert _gunicorn_config(monkeypatch, GUNICORN_WORKER="sync").worker_class_str == "sync"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "lots", "WEB_CONCURRENCY must be a whole number, not 'lots'"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, not 0"),
        ("PORT", "80a", "PORT must be a whole number, not '80a'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, plain, not 'xml'"),
        ("GUNICORN_WORKER", "gevent", "GUNICORN_WORKER must be sync or threaded, not 'gevent'"),
    ],
)
def test_a_bad_gunicorn_variable_stops_start_up_naming_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(GUNICORN_CONF))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"gunicorn: configuration error: {message}\n"


def test_a_sync_worker_with_threads_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUNICORN_WORKER", "sync")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(GUNICORN_CONF))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "gunicorn: configuration error: GUNICORN_WORKER=sync serves one request at a time: "
        "GUNICORN_THREADS (4) wants threaded\n"
    )


PRODUCTION_STATIC = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_production_settings_store_static_files_hashed_and_compressed() -> None:
    from atb_site.settings import base

    # DEBUG is off in the settings module the suite imports (test.py swaps in plain storage).
    assert base.DEBUG is False
    assert base.STORAGES["staticfiles"] == PRODUCTION_STATIC["staticfiles"]
    middleware = base.MIDDLEWARE
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == (
        middleware.index("django.middleware.security.SecurityMiddleware") + 1
    )


def test_whitenoise_serves_collected_files_hashed_compressed_and_cached_for_good(
    tmp_path: Path,
) -> None:
    source = (ROOT / "static" / "vendor" / "uplot" / "uPlot.iife.min.js").read_bytes()
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path, STORAGES=PRODUCTION_STATIC):
        # Given the files collected as the build collects them,
        call_command("collectstatic", "--noinput", verbosity=0)
        hashed_url = staticfiles_storage.url("vendor/uplot/uPlot.iife.min.js")
        admin_css_url = staticfiles_storage.url("admin/css/base.css")
        client = Client()  # a new handler: whitenoise scans this STATIC_ROOT

        # when a browser asks for the hashed name, it gets the gzip file, cached for 10 years;
        response = client.get(hashed_url, HTTP_ACCEPT_ENCODING="gzip, deflate")
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        admin_css = client.get(admin_css_url)
        # the unhashed name is served too, but only briefly cached.
        plain = client.get("/static/vendor/uplot/uPlot.iife.min.js")
        b"".join(plain.streaming_content)  # type: ignore[attr-defined]
        b"".join(admin_css.streaming_content)  # type: ignore[attr-defined]

    assert hashed_url.startswith("/static/vendor/uplot/uPlot.iife.min.")
    assert hashed_url != "/static/vendor/uplot/uPlot.iife.min.js"
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response["Content-Encoding"] == "gzip"
    assert response["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == source
    assert (tmp_path / hashed_url.removeprefix("/static/")).is_file()
    assert (tmp_path / "staticfiles.json").is_file()
    assert (admin_css.status_code, admin_css["Cache-Control"]) == (
        200,
        "max-age=315360000, public, immutable",
    )
    assert (plain.status_code, plain["Cache-Control"]) == (200, "max-age=60, public")
