"""Restoring a dump into a database, then `migrate` there.

Refused, with nothing changed: a dump that does not match its ``.sha256``; a dump whose archive
says it was made by a pg_dump older than the server it was taken from; a target that is not
empty (any table, view or sequence outside the system schemas) unless ``replace`` (--yes), in
which case every non-system schema of the target is dropped first and ``public`` recreated.

pg_restore runs with --no-owner --no-acl (the target's user owns what it creates: roles of the
source need not exist there), --exit-on-error and --single-transaction: it restores all or
nothing. It is the target server's own major version when there is one (``restore_tool``); a
newer pg_restore (17+) into a server before 17 writes SQL instead, piped without its
``SET transaction_timeout`` into the psql beside it, in one transaction too.
"""

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from django.conf import settings
from psycopg import sql

from audit.backups import paths
from audit.backups.dump import COMPONENT, pg_restore_list
from audit.backups.pg import (
    BackupError,
    PgTarget,
    PgTool,
    pg_tools_for,
    server_version_num,
    version_text,
)
from audit.backups.stats import SYSTEM_SCHEMAS_SQL
from audit.models import Severity
from audit.services import system_event_record

logger = logging.getLogger(__name__)

USER_RELATIONS_SQL = f"""
SELECT n.nspname || '.' || c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {SYSTEM_SCHEMAS_SQL}
    AND NOT EXISTS (
        SELECT FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    )
ORDER BY 1
"""  # noqa: S608 - constant text

USER_SCHEMAS_SQL = f"SELECT n.nspname FROM pg_namespace n WHERE {SYSTEM_SCHEMAS_SQL} ORDER BY 1"  # noqa: S608


class RestoreRefused(BackupError):
    """Refused before anything changed."""


@dataclass(frozen=True)
class ArchiveHeader:
    database: str
    dumped_from: str  # server version, "18.6"
    dumped_by: str  # pg_dump version


_HEADER = re.compile(
    r"^;\s+(dbname|Dumped from database version|Dumped by pg_dump version):\s*(.*)$"
)


def archive_header(toc: str) -> ArchiveHeader:
    """The header of ``pg_restore --list`` output."""
    found: dict[str, str] = {}
    for line in toc.splitlines()[:30]:
        match = _HEADER.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return ArchiveHeader(
        database=found.get("dbname", ""),
        dumped_from=found.get("Dumped from database version", ""),
        dumped_by=found.get("Dumped by pg_dump version", ""),
    )


def restore_tool(dump: Path, *, server_version: int) -> tuple[PgTool, str]:
    """The pg_restore for ``server_version`` (its own major version first, ``pg_tools_for``)
    that reads ``dump``, and the archive's table of contents. An older pg_restore cannot read
    a newer pg_dump's archive ("unsupported version"): then the next newer one is taken."""
    refused: list[str] = []
    for tool in pg_tools_for("pg_restore", server_version=server_version):
        try:
            return tool, pg_restore_list(tool, dump)
        except BackupError as exc:
            refused.append(f"{tool.path} ({tool.version}): {exc}")
    raise BackupError(f"No pg_restore here reads {dump.name}: {'; '.join(refused)}")


def _major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def check_archive(toc: str, dump: Path) -> ArchiveHeader:
    header = archive_header(toc)
    if _major(header.dumped_by) < _major(header.dumped_from):
        raise RestoreRefused(
            f"{dump.name} was made by pg_dump {header.dumped_by} from a PostgreSQL "
            f"{header.dumped_from} server: an older pg_dump can miss what it does not know. "
            "Refusing to restore it."
        )
    return header


def user_relations(conn: psycopg.Connection[Any]) -> list[str]:
    return [row[0] for row in conn.execute(USER_RELATIONS_SQL).fetchall()]


def wipe(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop every non-system schema and recreate an empty ``public`` as initdb makes it."""
    schemas = [row[0] for row in conn.execute(USER_SCHEMAS_SQL).fetchall()]
    with conn.transaction():
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
    return schemas


# pg_restore 17 and later set transaction_timeout (new in PostgreSQL 17) first thing; an older
# server refuses the unknown setting and, with --exit-on-error, the whole restore.
TRANSACTION_TIMEOUT_SINCE = 17
_TRANSACTION_TIMEOUT = b"SET transaction_timeout = 0;\n"
# What pg_restore writes before the first object: settings, comments, psql's \restrict.
_PREAMBLE = (b"SET ", b"SELECT pg_catalog.set_config(", b"--", b"\\restrict ", b"\n")


def pg_restore_into(tool: PgTool, dump: Path, target: PgTarget, *, server_version: int) -> None:
    """Restore ``dump`` into ``target`` (a server of ``server_version``), all or nothing."""
    if tool.major >= TRANSACTION_TIMEOUT_SINCE > server_version // 10000:
        _restore_filtered(tool, dump, target, server_version=server_version)
        return
    result = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [
            str(tool.path),
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target.dbname}",
            str(dump),
        ],
        env=target.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore into {target.describe()} failed: {result.stderr.strip()}")


def _restore_filtered(tool: PgTool, dump: Path, target: PgTarget, *, server_version: int) -> None:
    """A newer pg_restore into a server older than 17: its SQL, without the preamble's
    ``SET transaction_timeout``, through the psql beside it (ON_ERROR_STOP, one transaction).
    Only the preamble is filtered: the same text in a row's data is left alone."""
    psql = tool.path.with_name("psql")
    server = version_text(server_version)
    if not psql.is_file():
        raise BackupError(
            f"pg_restore {tool.version} sets transaction_timeout, which PostgreSQL {server} "
            f"does not know, and there is no psql beside it ({psql}) to restore its SQL without "
            f"that setting. Install the PostgreSQL {server_version // 10000} client tools or "
            "set PG_BIN_DIR to their bin folder."
        )
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        restore = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
            [str(tool.path), "--no-owner", "--no-acl", "--file=-", str(dump)],
            stdout=subprocess.PIPE,
            stderr=restore_err,
        )
        load = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
            [
                str(psql),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                f"--dbname={target.dbname}",
            ],
            env=target.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
        )
        assert restore.stdout is not None and load.stdin is not None  # noqa: S101 - PIPEs
        killed = False
        try:
            in_preamble = True
            for line in restore.stdout:
                if in_preamble and line == _TRANSACTION_TIMEOUT:
                    continue
                in_preamble = in_preamble and line.startswith(_PREAMBLE)
                load.stdin.write(line)
        except BrokenPipeError:
            pass  # psql stopped on an error: its message says which
        finally:
            restore.stdout.close()
            restore.wait()
            # pg_restore failing by itself (not through the pipe psql closed on its own error):
            # psql would commit what it got at the end of its input, so it must not see one.
            if restore.returncode not in (0, -signal.SIGPIPE) and load.poll() is None:
                load.kill()
                killed = True
            with contextlib.suppress(BrokenPipeError):
                load.stdin.close()
            load.wait()
        # psql stopping first ends pg_restore with a broken pipe: then psql's error is the one.
        failed = [
            (name, code, err)
            for name, code, err in (
                ("psql", 0 if killed else load.returncode, psql_err),
                ("pg_restore", restore.returncode, restore_err),
            )
            if code != 0
        ][:1]
        for name, code, err in failed:
            err.seek(0)
            text = err.read().decode(errors="replace").strip() or f"exit code {code}"
            raise BackupError(f"restore into {target.describe()} failed: {name}: {text}")


def target_url(target: PgTarget) -> str:
    auth = quote(target.user, safe="")
    if target.password:
        auth += ":" + quote(target.password, safe="")
    host = target.host or "localhost"
    port = f":{target.port}" if target.port else ""
    query = f"?{urlencode(target.options)}" if target.options else ""
    return f"postgres://{auth}@{host}{port}/{quote(target.dbname, safe='')}{query}"


def migrate(target: PgTarget) -> str:
    """`manage.py migrate` against the target, in a process of its own (DATABASE_URL=target), as
    an operator would run it; returns its output."""
    env = {**os.environ, "DATABASE_URL": target_url(target)}
    result = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "migrate", "--noinput"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=settings.BASE_DIR,
    )
    if result.returncode != 0:
        raise BackupError(
            f"the restore succeeded but migrate failed: {(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


@dataclass(frozen=True)
class RestoreResult:
    target: str
    header: ArchiveHeader
    replaced: list[str]  # the relations that were there before (--yes)
    seconds: float
    migrate_output: str


def backup_restore(
    *, dump: Path, target: PgTarget, replace: bool = False, run_migrate: bool = True
) -> RestoreResult:
    """Restore ``dump`` into ``target`` and migrate it. RestoreRefused (nothing changed) or
    BackupError (the restore failed; recorded) otherwise."""
    started = time.monotonic()
    paths.verify_sha256(dump)
    with target.connect(autocommit=True) as conn:
        server = server_version_num(conn)
        tool, toc = restore_tool(dump, server_version=server)
        header = check_archive(toc, dump)
        existing = user_relations(conn)
        if existing and not replace:
            shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
            raise RestoreRefused(
                f"{target.describe()} is not empty ({len(existing)} tables, views or sequences: "
                f"{shown}). Pass --yes to drop its contents and restore over them."
            )
        try:
            if existing:
                wipe(conn)
            pg_restore_into(tool, dump, target, server_version=server)
        except BackupError as exc:
            _record(dump, target, error=str(exc), seconds=time.monotonic() - started)
            raise
    try:
        output = migrate(target) if run_migrate else ""
    except BackupError as exc:
        _record(dump, target, error=str(exc), seconds=time.monotonic() - started)
        raise
    seconds = time.monotonic() - started
    _record(dump, target, error="", seconds=seconds, replaced=len(existing))
    return RestoreResult(
        target=target.describe(),
        header=header,
        replaced=existing,
        seconds=seconds,
        migrate_output=output,
    )


def _record(dump: Path, target: PgTarget, *, error: str, seconds: float, replaced: int = 0) -> None:
    where = f"{dump.name} into {target.describe()}"
    system_event_record(
        component=COMPONENT,
        event_type="backup_restore_failed" if error else "backup_restored",
        severity=Severity.ERROR if error else Severity.INFO,
        message=f"Restore of {where} failed: {error}" if error else f"Restored {where}",
        details={
            "path": str(dump),
            "target": target.describe(),
            "seconds": round(seconds, 3),
            "replaced_relations": replaced,
            "error": error,
        },
    )
