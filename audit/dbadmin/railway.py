"""``setup_railway``: the steps of a Railway deployment, and ``--verify``, which checks them.

``railway_verify`` checks, in order:

- url: the configured database URL (DATABASE_URL, else Railway's PG* variables) is PostgreSQL.
  Anything else stops the verification there.
- ssl: the connection requires TLS (sslmode require, verify-ca or verify-full, from the URL's
  ``?sslmode=`` or PGSSLMODE). Outside DEBUG anything weaker is an error; in DEBUG it is reported.
- connection: the server answers (version, latency, whether this session is encrypted).
- write: a system event is written, read back and compared inside a transaction that is then
  rolled back, and its absence afterwards is checked: the credentials can write, nothing remains.
- pg_tools: the pg_dump and pg_restore backups use (path, version): the server's major version
  is ok, a newer one a warning, none that fits (only older ones, or none) an error.
- redis: REDIS_URL answers PING (the Celery broker and the cache).

The outcome is recorded as a system event (component "dbadmin", event_type "railway_verify"),
committed, when the database could be reached.
"""

import os
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from atb_site.db.base import direct_settings_dict
from audit.backups.pg import BackupError, find_pg_tool
from audit.backups.restore import TRANSACTION_TIMEOUT_SINCE
from audit.dbadmin.report import Report
from audit.models import Severity, SystemEvent
from audit.services import system_event_record

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")
SSL_REQUIRED = ("require", "verify-ca", "verify-full")
COMPONENT = "dbadmin"
PROBE_EVENT_TYPE = "railway_verify_probe"

SETUP_STEPS = """\
Railway setup for this service (README.md, "Deploying on Railway"):

 1. In the Railway project, add a PostgreSQL database and a Redis database.
 2. Create the web service from this repository; Railway builds it with the Dockerfile
    (railway.json) and runs the Procfile's web process. Add a worker and a beat service from the
    same repository with the start commands of the Procfile's worker and beat lines.
 3. On each service set the variables:
      DJANGO_SECRET_KEY   python -c "import secrets; print(secrets.token_urlsafe(50))"
      DATABASE_URL        ${{Postgres.DATABASE_URL}}   (or leave it unset: PGHOST, PGPORT,
                          PGUSER, PGPASSWORD, PGDATABASE are used)
      PGSSLMODE           require   (or append ?sslmode=require to DATABASE_URL)
      REDIS_URL           ${{Redis.REDIS_URL}}
      PG_MAJOR            the PostgreSQL server's major version (default 18): the image's
                          pg_dump and pg_restore for backups
    DJANGO_DEBUG stays unset. RAILWAY_PUBLIC_DOMAIN is set by Railway and allowed automatically.
 4. Web service: pre-deploy command
      python manage.py migrate --noinput && python manage.py setup_periodic_tasks
    health check path /health/ready.
 5. Deploy, then inside each service's container (`railway ssh --service web`, then worker):
      python manage.py setup_railway --verify   # URL, SSL, a rolled-back write, pg_dump
                                                #   and pg_restore for the server, Redis
      python manage.py db_verify                # schemas, tables, columns, migrations
"""


def database_url_configured() -> str:
    """The database URL the settings were built from: DATABASE_URL, else Railway's variables."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    if os.environ.get("PGHOST"):
        return f"postgres://{os.environ['PGHOST']}:{os.environ.get('PGPORT', '5432')}/"
    return ""


def ssl_mode_configured(*, url: str, options: dict[str, Any]) -> tuple[str, str]:
    """The sslmode libpq will use and where it comes from: the URL's query, the connection's
    OPTIONS, PGSSLMODE, else libpq's default, ``prefer`` (TLS if offered, plain otherwise)."""
    query = parse_qs(urlsplit(url).query).get("sslmode")
    if query:
        return query[-1], "DATABASE_URL ?sslmode="
    if options.get("sslmode"):
        return str(options["sslmode"]), "DATABASES OPTIONS"
    if os.environ.get("PGSSLMODE"):
        return os.environ["PGSSLMODE"], "PGSSLMODE"
    return "prefer", "libpq default"


def railway_verify(*, url: str | None = None, debug: bool | None = None) -> Report:
    """Check the default database (the one the audit records go to) and Redis; ``url`` and
    ``debug`` default to the configured URL and settings.DEBUG."""
    url = database_url_configured() if url is None else url
    debug = settings.DEBUG if debug is None else debug
    using = DEFAULT_DB_ALIAS
    connection = connections[using]
    report = Report(title=f"setup_railway --verify ({'DEBUG' if debug else 'production'})")

    scheme = urlsplit(url).scheme.lower()
    shown = f"{scheme}://..." if scheme else "(no database URL)"
    if scheme not in POSTGRES_SCHEMES:
        report.add(
            "url",
            "error",
            shown,
            "the database URL is not PostgreSQL (postgres:// or postgresql://); "
            "set DATABASE_URL to Railway's ${{Postgres.DATABASE_URL}}",
            scheme=scheme,
        )
        return report
    if connection.vendor != "postgresql":
        report.add("url", "error", shown, f"the database backend is {connection.vendor}")
        return report
    report.add("url", "ok", shown, f"PostgreSQL, engine {connection.settings_dict['ENGINE']}")

    if settings.DATABASE_PGBOUNCER:
        # PgBouncer is reached on the private network; the server, which it and the direct
        # connections (locks, backups) reach, is what must require TLS.
        url, options = settings.DATABASE_DIRECT_URL, direct_settings_dict()["OPTIONS"]
    else:
        options = connection.settings_dict["OPTIONS"]
    mode, source = ssl_mode_configured(url=url, options=options)
    if settings.DATABASE_PGBOUNCER:
        source = source.replace("DATABASE_URL", "DATABASE_DIRECT_URL")
    if mode in SSL_REQUIRED:
        report.add("ssl", "ok", f"sslmode={mode}", f"TLS required ({source})", sslmode=mode)
    else:
        report.add(
            "ssl",
            "info" if debug else "error",
            f"sslmode={mode}",
            f"TLS not required ({source})"
            + (
                ": acceptable in DEBUG"
                if debug
                else ": set PGSSLMODE=require or add ?sslmode=require to DATABASE_URL"
            ),
            sslmode=mode,
        )

    try:
        server_version = _connection_check(connection, report)
        _write_check(using, report)
    except DatabaseError as error:
        message = " ".join(str(error).split())
        report.add("connection", "error", str(connection.settings_dict["NAME"]), message)
        return report
    _pg_tools_check(server_version, report)
    _redis_check(report)
    _record(report)
    return report


def _pg_tools_check(server_version: int, report: Report) -> None:
    """The pg_dump and pg_restore backups would use (``audit.backups.pg``): where, which version,
    and whether they fit the server. None that fits (none, or only older ones) is an error; a
    newer one works and is a warning (set PG_MAJOR to the server's major version)."""
    major = server_version // 10000
    for name in ("pg_dump", "pg_restore"):
        try:
            tool = find_pg_tool(name, server_version=server_version)
        except BackupError as error:
            report.add("pg_tools", "error", name, str(error), server_major=major)
            continue
        facts = {"path": str(tool.path), "version": tool.version, "server_major": major}
        found = f"{tool.path}, {tool.version}"
        psql = tool.path.with_name("psql")
        if tool.major == major:
            report.add("pg_tools", "ok", name, f"{found}: the server's major version", **facts)
        elif (
            name == "pg_restore"
            and tool.major >= TRANSACTION_TIMEOUT_SINCE > major
            and not (psql.is_file())
        ):
            report.add(
                "pg_tools",
                "error",
                name,
                f"{found}: newer than the server ({major}) and no psql beside it to restore "
                f"without SET transaction_timeout; install the PostgreSQL {major} client tools",
                **facts,
            )
        else:
            report.add(
                "pg_tools",
                "warning",
                name,
                f"{found}: newer than the server ({major}), which works; the server's own "
                f"version is better (PG_MAJOR={major} on Railway)",
                **facts,
            )


def _connection_check(connection: Any, report: Report) -> int:
    """Reported; returns the server's version number (180006 for 18.6)."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT 1")
        latency_ms = (time.perf_counter() - started) * 1000
        cursor.execute(
            "SELECT current_setting('server_version'), current_database(), "
            "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), "
            "current_setting('server_version_num')::int"
        )
        version, database, encrypted, version_num = cursor.fetchone()
    report.add(
        "connection",
        "ok",
        str(database),
        f"PostgreSQL {version}, round trip {latency_ms:.1f} ms, "
        f"{'encrypted (TLS)' if encrypted else 'not encrypted'}",
        server_version=version,
        encrypted=bool(encrypted),
    )
    return int(version_num)


class _RolledBack(Exception):
    pass


def _write_check(using: str, report: Report) -> None:
    """Write a system event, read it back, roll back; then check that it is gone."""
    marker = f"setup_railway probe {secrets.token_hex(8)}"
    read_back = None
    try:
        with transaction.atomic(using=using):
            event = system_event_record(
                component=COMPONENT, event_type=PROBE_EVENT_TYPE, message=marker
            )
            read_back = SystemEvent.objects.using(using).filter(pk=event.pk).first()
            raise _RolledBack
    except _RolledBack:
        pass
    except DatabaseError as error:
        report.add(
            "write", "error", "audit.system_events", f"cannot write: {' '.join(str(error).split())}"
        )
        return
    remains = SystemEvent.objects.using(using).filter(message=marker).exists()
    if read_back is None or read_back.message != marker:
        report.add("write", "error", "audit.system_events", "the row written was not read back")
    elif remains:
        report.add("write", "error", "audit.system_events", "the rolled-back row is still there")
    else:
        report.add(
            "write",
            "ok",
            "audit.system_events",
            "a row written and read back in a transaction, rolled back: nothing remains",
        )


def _redis_check(report: Report) -> None:
    where = urlsplit(settings.REDIS_URL)
    subject = f"{where.hostname}:{where.port or 6379}{where.path or ''}"
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except redis.RedisError as error:
        report.add("redis", "error", subject, f"REDIS_URL does not answer: {error}")
        return
    report.add("redis", "ok", subject, "PING answered")


def _record(report: Report) -> None:
    """Record the outcome; a database that refused the probe may refuse this too: say so."""
    try:
        with transaction.atomic():
            _record_event(report)
    except DatabaseError as error:
        report.add("audit", "error", "audit.system_events", f"outcome not recorded: {error}")


def _record_event(report: Report) -> None:
    system_event_record(
        component=COMPONENT,
        event_type="railway_verify",
        severity=Severity.INFO if report.ok else Severity.ERROR,
        message=f"setup_railway --verify: {report.summary()}",
        details={"findings": report.as_dict()["findings"]},
    )
