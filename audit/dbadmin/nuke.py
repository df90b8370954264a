"""``db_nuke``: drop everything our migrations built and build it again, empty. Development only.

In one transaction: DROP SCHEMA ... CASCADE for each schema of settings.DATABASE_APP_SCHEMAS and
for ``public`` (Django's, django_celery_beat's and the migration history's tables, and the
btree_gist extension), then CREATE SCHEMA public again with its owner, privileges and comment as
they were. Then ``migrate`` rebuilds every table, ``setup_periodic_tasks`` the beat schedule (as
the release step does), and a system event records the run in the rebuilt database.

Roles, other schemas and other databases are untouched. A session holding a lock on a table
(a running web, worker or beat) makes it fail after LOCK_TIMEOUT rather than wait forever.
"""

from dataclasses import dataclass
from io import StringIO
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.recorder import MigrationRecorder

from audit.models import Severity
from audit.services import system_event_record

LOCK_TIMEOUT = "10s"


class NukeRefused(Exception):
    pass


@dataclass(frozen=True)
class NukeResult:
    database: str
    schemas_dropped: list[str]
    relations_dropped: int
    migrations_applied: int


def database_describe(*, using: str = DEFAULT_DB_ALIAS) -> str:
    where = connections[using].settings_dict
    port = f":{where['PORT']}" if where.get("PORT") else ""
    return f"{where['NAME']} at {where.get('HOST') or 'local socket'}{port}"


def database_nuke_refusal(*, confirmed: bool, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why db_nuke must not run, or None."""
    if not settings.DEBUG:
        return (
            "db_nuke refused: DEBUG is off (production settings). It drops every table; it runs "
            "only with DJANGO_DEBUG=true on a development database. Nothing was dropped."
        )
    if not confirmed:
        return (
            "db_nuke refused: it drops every table of database "
            f"{database_describe(using=using)} and rebuilds it empty; pass --yes to confirm. "
            "Nothing was dropped."
        )
    return None


def database_nuke(*, confirmed: bool, using: str = DEFAULT_DB_ALIAS) -> NukeResult:
    refusal = database_nuke_refusal(confirmed=confirmed, using=using)
    if refusal:
        raise NukeRefused(refusal)
    connection = connections[using]
    quote = connection.ops.quote_name
    schemas = [*settings.DATABASE_APP_SCHEMAS, "public"]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            "SELECT n.nspname, count(c.oid) FROM pg_namespace n "
            "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm') "
            "WHERE n.nspname = ANY(%s) GROUP BY n.nspname",
            [schemas],
        )
        present = dict(cursor.fetchall())
        public = _public_schema(cursor)
        for schema in schemas:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")
        owner, grants, comment = public
        cursor.execute(f"CREATE SCHEMA public AUTHORIZATION {owner}")
        for grantee, privilege, grantable in grants:
            option = " WITH GRANT OPTION" if grantable else ""
            cursor.execute(f"GRANT {privilege} ON SCHEMA public TO {grantee}{option}")
        if comment is not None:
            cursor.execute("COMMENT ON SCHEMA public IS %s", [comment])
    # The content types' cache holds the dropped rows' ids; post_migrate must not reuse them.
    ContentType.objects.clear_cache()
    call_command("migrate", database=using, interactive=False, verbosity=0, stdout=StringIO())
    call_command("setup_periodic_tasks", stdout=StringIO())
    applied = MigrationRecorder(connection).migration_qs.count()
    result = NukeResult(
        database=str(connection.settings_dict["NAME"]),
        schemas_dropped=[schema for schema in schemas if schema in present],
        relations_dropped=sum(int(count) for count in present.values()),
        migrations_applied=applied,
    )
    system_event_record(
        component="dbadmin",
        event_type="db_nuke",
        severity=Severity.WARNING,
        message=(
            f"db_nuke dropped schemas {', '.join(result.schemas_dropped)} "
            f"({result.relations_dropped} tables and views) and rebuilt them: "
            f"{result.migrations_applied} migrations applied"
        ),
        details={
            "database": result.database,
            "schemas_dropped": result.schemas_dropped,
            "relations_dropped": result.relations_dropped,
            "migrations_applied": result.migrations_applied,
        },
    )
    return result


def _public_schema(cursor: Any) -> tuple[str, list[tuple[str, str, bool]], str | None]:
    """The public schema's owner, its grants to others (PUBLIC included) and its comment, as
    quoted SQL names; the current user and PostgreSQL 15's defaults when it does not exist."""
    cursor.execute(
        "SELECT quote_ident(pg_get_userbyid(n.nspowner)), obj_description(n.oid, 'pg_namespace') "
        "FROM pg_namespace n WHERE n.nspname = 'public'"
    )
    row = cursor.fetchone()
    if row is None:
        return "CURRENT_USER", [("PUBLIC", "USAGE", False)], None
    owner, comment = row
    cursor.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
        "ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable "
        "FROM pg_namespace n, aclexplode(n.nspacl) a "
        "WHERE n.nspname = 'public' AND a.grantee <> n.nspowner ORDER BY 1, 2"
    )
    return owner, [(str(g), str(p), bool(o)) for g, p, o in cursor.fetchall()], comment
