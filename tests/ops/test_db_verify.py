"""db_verify: the database against the code. Hand-made damage is done inside the test's
transaction (PostgreSQL's DDL is transactional), so the rollback repairs it for the other tests;
the end-to-end run of the command works on a scratch database."""

import json
import re
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from audit.dbadmin import canonical_type, database_verify
from audit.dbadmin.verify import EXACT_COUNT_BELOW, MATERIALIZED_VIEWS, TRIGGERS
from tests.factories import make_bot, make_candle, make_trade
from tests.ops.dbadmin_support import manage, scratch_database, sql
from trading.models import Trade

pytestmark = pytest.mark.django_db


def execute(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def problems() -> list[tuple[str, str, str, str]]:
    report = database_verify()
    return [(f.check, f.status, f.subject, f.message) for f in report.findings if f.status != "ok"]


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("db_verify", *args, stdout=out)
    except CommandError as error:
        assert str(error).startswith("db_verify: FAILED: ")
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def our_counts() -> tuple[int, int, int]:
    """Tables, relations with checked columns, and columns, counted from the models."""
    tables = {
        m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed
    }
    ours = [
        m
        for m in apps.get_models()
        if m._meta.app_label
        in {"trading", "audit", "botconfig", "analytics", "benchmarks", "alerts"}
    ]
    columns = sum(len([f for f in m._meta.concrete_fields if f.column]) for m in ours)
    return len(tables) + 1, len(ours), columns  # + analytics.bot_trade_versions (SQL only)


def test_a_clean_database_passes_with_exit_code_0() -> None:
    code, output = run()
    tables, relations, columns = our_counts()
    lines = output.splitlines()
    assert code == 0
    settings = connection.settings_dict
    assert (
        lines[0]
        == f"db_verify: database {settings['NAME']} at {settings['HOST']}:{settings['PORT']}"
    )
    assert [re.split(r"\s{2,}", line) for line in lines[2:9]] == [
        ["CHECK", "STATUS", "SUBJECT", "DETAIL"],
        ["connection", "ok", settings["NAME"], lines[3].split("  ")[-1].strip()],
        ["schemas", "ok", "trading, audit, config, analytics, alerts", "5 schemas exist"],
        [
            "relations",
            "ok",
            "tables, views, triggers",
            f"{tables} tables, 3 materialized views with unique indexes, 5 triggers",
        ],
        [
            "columns",
            "ok",
            f"{relations} relations",
            f"{columns} columns match their models' types and nullability",
        ],
        ["migrations", "ok", "all", lines[7].split("  ")[-1].strip()],
        [""],
    ]
    assert re.fullmatch(
        r"PostgreSQL 1\d\.\d+ as \w+, round trip \d+\.\d ms", lines[3].split("  ")[-1].strip()
    )
    assert re.fullmatch(r"\d+ migrations applied, none pending", lines[7].split("  ")[-1].strip())
    assert lines[9] == "OK: 0 errors, 0 warnings"
    assert re.split(r"\s{2,}", lines[11].strip()) == ["TABLE", "ROWS"]


def test_row_counts_are_exact_below_the_threshold_and_estimated_above() -> None:
    bot = make_bot()
    make_trade(bot)
    make_trade(bot)
    counts = {c["table"]: c for c in database_verify().facts["row_counts"]}
    assert counts["trading.trades"] == {"table": "trading.trades", "rows": 2, "estimated": False}
    assert counts["trading.bots"]["rows"] == 1
    # The statistics claim a big table: its estimate is shown, unless exact counts are asked for.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_class SET reltuples = %s WHERE oid = 'trading.trades'::regclass",
            [EXACT_COUNT_BELOW * 3],
        )
    estimated = {c["table"]: c for c in database_verify().facts["row_counts"]}
    assert estimated["trading.trades"] == {
        "table": "trading.trades",
        "rows": EXACT_COUNT_BELOW * 3,
        "estimated": True,
    }
    exact = {c["table"]: c for c in database_verify(exact=True).facts["row_counts"]}
    assert exact["trading.trades"] == {"table": "trading.trades", "rows": 2, "estimated": False}
    assert {name: counts[name]["rows"] for name in MATERIALIZED_VIEWS} == {
        name: 0 for name in MATERIALIZED_VIEWS
    }


def test_a_column_whose_type_was_altered_by_hand_fails_naming_it() -> None:
    execute("ALTER TABLE trading.orders ALTER COLUMN price TYPE double precision")
    assert problems() == [
        (
            "columns",
            "error",
            "trading.orders.price",
            "type: expected numeric(28,10), found double precision",
        )
    ]
    code, output = run()
    assert code == 1
    assert [re.split(r"\s{2,}", line) for line in output.splitlines() if "ERROR" in line] == [
        [
            "columns",
            "ERROR",
            "trading.orders.price",
            "type: expected numeric(28,10), found double precision",
        ]
    ]
    assert "FAILED: 1 error, 0 warnings" in output.splitlines()


def test_a_varchar_made_longer_and_a_nullability_change_are_both_reported() -> None:
    execute("ALTER TABLE trading.bots ALTER COLUMN name TYPE varchar(300)")
    execute("ALTER TABLE trading.bots ALTER COLUMN strategy_type DROP NOT NULL")
    assert problems() == [
        (
            "columns",
            "error",
            "trading.bots.name",
            "type: expected character varying(200), found character varying(300)",
        ),
        (
            "columns",
            "error",
            "trading.bots.strategy_type",
            "nullability: expected NOT NULL, found NULL",
        ),
    ]


def test_a_dropped_column_fails_naming_it() -> None:
    execute("ALTER TABLE audit.risk_events DROP COLUMN resolution_note")
    assert problems() == [
        (
            "columns",
            "error",
            "audit.risk_events.resolution_note",
            "column missing (expected text, field audit.RiskEvent.resolution_note)",
        )
    ]


def test_an_extra_column_is_a_warning_and_passes() -> None:
    execute("ALTER TABLE trading.bots ADD COLUMN legacy_flag boolean NOT NULL DEFAULT false")
    assert problems() == [
        (
            "columns",
            "warning",
            "trading.bots.legacy_flag",
            "extra column (boolean NOT NULL) that model trading.Bot does not have",
        )
    ]
    code, output = run()
    assert code == 0
    assert "OK: 0 errors, 1 warning" in output.splitlines()


def test_a_missing_table_fails_once_without_column_noise() -> None:
    execute("DROP TABLE trading.idempotency_keys")
    assert problems() == [
        (
            "relations",
            "error",
            "trading.idempotency_keys",
            "table missing (model trading.IdempotencyKey)",
        )
    ]


def test_a_renamed_table_is_missing_and_its_new_name_is_a_stray() -> None:
    execute("ALTER TABLE trading.signals RENAME TO signals_old")
    assert problems() == [
        ("relations", "error", "trading.signals", "table missing (model trading.Signal)"),
        (
            "relations",
            "warning",
            "trading.signals_old",
            "table that no model or migration of the code describes",
        ),
    ]


def test_a_materialized_view_without_its_unique_index_and_a_missing_trigger_fail() -> None:
    execute("DROP INDEX analytics.bot_performance_summary_bot_uniq")
    execute("DROP TRIGGER system_events_append_only ON audit.system_events")
    execute("ALTER TABLE trading.trades DISABLE TRIGGER trades_version_delete")
    assert problems() == [
        (
            "relations",
            "error",
            "analytics.bot_performance_summary",
            "materialized view has no unique index: REFRESH ... CONCURRENTLY will fail",
        ),
        ("relations", "error", "trading.trades trades_version_delete", "trigger disabled"),
        ("relations", "error", "audit.system_events system_events_append_only", "trigger missing"),
    ]
    assert len(TRIGGERS) == 5


def test_a_missing_schema_fails() -> None:
    execute("ALTER SCHEMA config RENAME TO config_old")
    found = problems()
    assert found[0] == ("schemas", "error", "config", "schema missing")
    assert (
        "relations",
        "error",
        "config.bot_configurations",
        "table missing (model botconfig.BotConfiguration)",
    ) in found


def newest_migration_nothing_depends_on() -> tuple[str, str]:
    graph = MigrationLoader(connection).graph
    return sorted(node for node in graph.leaf_nodes() if not graph.node_map[node].children)[-1]


def test_an_unapplied_migration_fails_naming_it() -> None:
    app_label, name = newest_migration_nothing_depends_on()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = %s AND name = %s", [app_label, name]
        )
    assert problems() == [
        (
            "migrations",
            "error",
            f"{app_label}.{name}",
            "not applied: run `python manage.py migrate`",
        )
    ]
    code, output = run("--json")
    report = json.loads(output)
    assert code == 1
    assert (report["ok"], report["errors"], report["warnings"]) == (False, 1, 0)
    assert report["unapplied_migrations"] == [f"{app_label}.{name}"]


def test_a_migration_recorded_but_not_in_the_code_is_a_warning() -> None:
    execute(
        "INSERT INTO django_migrations (app, name, applied) "
        "VALUES ('trading', '9999_from_another_branch', now())"
    )
    assert problems() == [
        (
            "migrations",
            "warning",
            "trading.9999_from_another_branch",
            "recorded as applied, but the code has no such migration",
        )
    ]


@pytest.mark.parametrize(
    ("django", "postgres"),
    [
        ("varchar(64)", "character varying(64)"),
        ("numeric(20, 8)", "numeric(20,8)"),
        ("timestamp with time zone", "timestamp with time zone"),
        ("timestamp", "timestamp without time zone"),
        ("varchar(10)[]", "character varying(10)[]"),
        ("bigint", "bigint"),
        ("jsonb", "jsonb"),
        ("double precision", "double precision"),
    ],
)
def test_django_types_are_spelled_as_format_type_spells_them(django: str, postgres: str) -> None:
    assert canonical_type(django) == postgres


def test_the_command_exits_1_after_a_column_is_altered_by_hand_on_a_real_database() -> None:
    with scratch_database("verify") as url:
        clean = manage("db_verify", url=url)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        sql(url, "ALTER TABLE trading.trades ALTER COLUMN exit_reason TYPE text")
        damaged = manage("db_verify", url=url)
    assert damaged.returncode == 1
    width = Trade._meta.get_field("exit_reason").max_length
    assert [
        re.split(r"\s{2,}", line) for line in damaged.stdout.splitlines() if "ERROR" in line
    ] == [
        [
            "columns",
            "ERROR",
            "trading.trades.exit_reason",
            f"type: expected character varying({width}), found text",
        ]
    ]
    assert damaged.stderr.strip() == "CommandError: db_verify: FAILED: 1 error, 0 warnings"


def test_a_server_that_does_not_answer_fails_at_the_connection_and_stops_there() -> None:
    result = manage("db_verify", url="postgres://postgres@127.0.0.1:1/atb_nowhere")
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[0] == "db_verify: database atb_nowhere at 127.0.0.1:1"
    assert [re.split(r"\s{2,}", line)[:3] for line in lines[2:4]] == [
        ["CHECK", "STATUS", "SUBJECT"],
        ["connection", "ERROR", "atb_nowhere"],
    ]
    assert re.split(r"\s{2,}", lines[3])[3].startswith(
        'cannot connect: connection failed: connection to server at "127.0.0.1", port 1 failed'
    )
    assert lines[4:] == ["", "FAILED: 1 error, 0 warnings"]


def test_market_data_partitions_are_its_own_and_its_estimate_sums_theirs() -> None:
    """trading.market_data's months are not strays; a big table's estimate is its months'."""
    make_candle(ts=datetime(2026, 1, 5, tzinfo=UTC))
    make_candle(ts=datetime(2026, 2, 5, tzinfo=UTC))
    assert [p for p in problems() if "market_data" in p[2]] == []
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_class SET reltuples = %s WHERE oid IN "
            "('trading.market_data_p2026_01'::regclass, 'trading.market_data_p2026_02'::regclass)",
            [EXACT_COUNT_BELOW * 2],
        )
    counts = {c["table"]: c for c in database_verify().facts["row_counts"]}
    assert counts["trading.market_data"] == {
        "table": "trading.market_data",
        "rows": EXACT_COUNT_BELOW * 4,
        "estimated": True,
    }
    assert not any(name.startswith("trading.market_data_p") for name in counts)
    exact = {c["table"]: c for c in database_verify(exact=True).facts["row_counts"]}
    assert exact["trading.market_data"]["rows"] == 2
