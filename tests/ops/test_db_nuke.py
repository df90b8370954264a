"""db_nuke: refuses outside DEBUG and without --yes (nothing dropped); otherwise drops our
schemas and public and rebuilds them. Every run works on a scratch database, never on the
database the other tests use."""

import json
from urllib.parse import urlsplit

from analytics.services.schedule import SCHEDULE
from tests.ops.dbadmin_support import manage, scratch_database, sql

RELATIONS = (
    "SELECT n.nspname || '.' || c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm') "
    "AND n.nspname IN ('public', 'trading', 'audit', 'config', 'analytics', 'alerts', 'keep') "
    "ORDER BY 1"
)
PUBLIC_SCHEMA = (
    "SELECT nspowner::regrole::text, nspacl::text, obj_description(oid, 'pg_namespace') "
    "FROM pg_namespace WHERE nspname = 'public'"
)
INSERT_BOT = (
    "INSERT INTO trading.bots (bot_id, name, strategy_type, exchange, base_currency, status, "
    "mode, initial_capital_usd, created_at, updated_at, metadata) VALUES "
    "('doomed', 'Doomed', 'momentum', 'binance', 'USDT', 'active', 'paper', 1000, now(), now(), "
    "'{}')"
)


def where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path.lstrip('/')} at {parts.hostname}:{parts.port}"


def snapshot(url: str) -> tuple[object, ...]:
    return (
        sql(url, RELATIONS),
        sql(url, "SELECT bot_id FROM trading.bots"),
        sql(url, "SELECT count(*) FROM django_migrations"),
    )


def test_outside_debug_it_refuses_and_drops_nothing() -> None:
    with scratch_database("nuke") as url:
        sql(url, INSERT_BOT)
        before = snapshot(url)
        result = manage("db_nuke", "--yes", url=url, debug=False)
        after = snapshot(url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "CommandError: db_nuke refused: DEBUG is off (production settings). It drops every "
        "table; it runs only with DJANGO_DEBUG=true on a development database. Nothing was "
        "dropped."
    )
    assert after == before
    assert before[1] == [("doomed",)]


def test_without_yes_it_refuses_and_drops_nothing() -> None:
    with scratch_database("nuke") as url:
        sql(url, INSERT_BOT)
        before = snapshot(url)
        result = manage("db_nuke", url=url)
        after = snapshot(url)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"CommandError: db_nuke refused: it drops every table of database {where(url)} and "
        "rebuilds it empty; pass --yes to confirm. Nothing was dropped."
    )
    assert after == before


def test_with_yes_in_debug_it_drops_everything_and_rebuilds_it() -> None:
    with scratch_database("nuke") as url:
        sql(url, INSERT_BOT)
        sql(url, "CREATE TABLE public.leftover (id int)")
        sql(
            url,
            "CREATE SCHEMA keep; CREATE TABLE keep.notes (id int); "
            "INSERT INTO keep.notes VALUES (1)",
        )
        relations_before = sql(url, RELATIONS)
        migrations_before = sql(url, "SELECT count(*) FROM django_migrations")[0][0]
        public_before = sql(url, PUBLIC_SCHEMA)

        result = manage("db_nuke", "--yes", url=url)

        relations_after = sql(url, RELATIONS)
        bots = sql(url, "SELECT count(*) FROM trading.bots")
        events = sql(
            url, "SELECT component, event_type, severity, message, details FROM audit.system_events"
        )
        tasks = sql(url, "SELECT name FROM django_celery_beat_periodictask ORDER BY name")
        public_after = sql(url, PUBLIC_SCHEMA)
        kept = sql(url, "SELECT id FROM keep.notes")
        verify = manage("db_verify", url=url)
    dropped = len([r for r in relations_before if not r[0].startswith("keep.")])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"db_nuke: database {where(url)}: dropped schemas trading, audit, config, analytics, "
        f"alerts, public ({dropped} tables and views); rebuilt with {migrations_before} "
        "migrations."
    )
    assert relations_after == [r for r in relations_before if r != ("public.leftover",)]
    assert bots == [(0,)]
    assert kept == [(1,)]  # a schema that is not ours is left alone
    assert public_after == public_before
    assert tasks == sorted((task.name,) for task in SCHEDULE)
    assert len(events) == 1
    component, event_type, severity, message, details = events[0]
    assert (component, event_type, severity) == ("dbadmin", "db_nuke", "warning")
    assert message == (
        f"db_nuke dropped schemas trading, audit, config, analytics, alerts, public ({dropped} "
        f"tables and views) and rebuilt them: {migrations_before} migrations applied"
    )
    assert (details if isinstance(details, dict) else json.loads(details)) == {
        "database": urlsplit(url).path.lstrip("/"),
        "schemas_dropped": ["trading", "audit", "config", "analytics", "alerts", "public"],
        "relations_dropped": dropped,
        "migrations_applied": migrations_before,
    }
    assert verify.returncode == 0, verify.stdout
