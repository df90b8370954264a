"""``migrate`` that two processes can run at once (two deploys overlapping, or a pre-deploy
command on several services): each run holds a PostgreSQL advisory lock for its whole length, so
the second waits for the first and then finds nothing left to apply. Django's own ``migrate``
would have both create the same tables, and one fail.

It replaces Django's command because an installed app's command wins over ``django.core``'s
(audit is the only app of ours defining ``migrate``; no ``django.contrib`` app does).

The lock is session-level and lives on a connection of its own, so the migrations' transactions
(and any ``CREATE INDEX CONCURRENTLY``) never run inside it, and it goes with the process if the
process dies. That connection goes to the server itself (DATABASE_DIRECT_URL behind PgBouncer,
which would hand a session-level lock's server connection to other clients between statements
and take the unlock to another one). The waiting side polls ``pg_try_advisory_lock`` instead of
blocking in ``pg_advisory_lock``: a statement blocked there would hold a snapshot that a concurrent
``CREATE INDEX CONCURRENTLY`` of the running side waits for, a deadlock PostgreSQL cannot see.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import override_settings

from atb_site.db.base import direct_connection_params, direct_settings_dict
from trading.db import advisory_lock_key

MIGRATE_LOCK_NAME = "atb:migrate"
# Seen in pg_stat_activity while a migrate holds or waits for the lock.
LOCK_APPLICATION_NAME = "atb migrate lock"
POLL_SECONDS = 0.5


class Command(migrate.Command):
    help = migrate.Command.help + " Waits first until no other migrate runs on the same database."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=1800.0,
            help="Seconds to wait for another migrate on this database to finish (default 1800).",
        )
        parser.add_argument(
            "--direct",
            action="store_true",
            help="Behind PgBouncer (DATABASE_PGBOUNCER), run on DATABASE_DIRECT_URL, the server "
            "itself (the release step); without PgBouncer it changes nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with (
            _on_the_server(options["database"]) if options["direct"] else nullcontext(),
            self.migrate_lock(
                alias=options["database"],
                timeout=options["lock_timeout"],
                verbose=options["verbosity"] >= 1,
            ),
        ):
            super().handle(*args, **options)

    @contextmanager
    def migrate_lock(self, *, alias: str, timeout: float, verbose: bool) -> Iterator[None]:
        params = {
            **(
                direct_connection_params()
                if alias == DEFAULT_DB_ALIAS
                else connections[alias].get_connection_params()
            ),
            "application_name": LOCK_APPLICATION_NAME,
        }
        key = advisory_lock_key(MIGRATE_LOCK_NAME)
        # Straight from psycopg: Django's connection pool (DATABASE_POOL) must not hand it out.
        conn = psycopg.connect(**params, autocommit=True)
        try:
            deadline = time.monotonic() + timeout
            waiting = False
            while not _try_lock(conn, key):
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"Another migrate has held the migration lock on this database for "
                        f"over {timeout:g} s; nothing was applied. Look for it in "
                        f"pg_stat_activity (application_name '{LOCK_APPLICATION_NAME}'), or "
                        f"pass a longer --lock-timeout."
                    )
                if not waiting and verbose:
                    self.stdout.write("Waiting for another migrate on this database to finish...")
                waiting = True
                time.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])
        finally:
            conn.close()


@contextmanager
def _on_the_server(alias: str) -> Iterator[None]:
    """Behind PgBouncer, the default database's connection goes to DATABASE_DIRECT_URL for the
    block, with this process's session timeouts sent as a direct connection sends them."""
    if alias != DEFAULT_DB_ALIAS or not settings.DATABASE_PGBOUNCER:
        yield
        return
    wrapper = connections[alias]
    wrapper.close()
    pooled, wrapper.settings_dict = wrapper.settings_dict, direct_settings_dict()
    try:
        with override_settings(DATABASE_PGBOUNCER=False):
            yield
    finally:
        wrapper.close()
        wrapper.settings_dict = pooled


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    return bool(row and row[0])
