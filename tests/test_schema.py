"""The database itself keeps the invariants of SCHEMA.md, whoever writes the row."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, ProgrammingError, connection, transaction

from audit.services import system_event_record
from botconfig.models import BotConfiguration
from tests.factories import T0, make_bot, make_candle, make_position, make_trade
from trading.models import Bot, MarketData, Order, Position, Trade

pytestmark = pytest.mark.django_db

SCHEMA_TABLES = {
    "trading": {
        "bots",
        "bot_runs",
        "predictions",
        "trades",
        "positions",
        "orders",
        "order_fills",
        "market_data",
        "market_candles_derived",
        "market_candles_backlog",
        "signals",
        "account_balance",
        "risk_metrics",
        "risk_metrics_backlog",
        "api_tokens",
        "idempotency_keys",
    },
    "analytics": {
        "portfolio_snapshots",
        "bot_trade_versions",
        "bot_summary_checkpoints",
        "report_recipient_lists",
        "reports",
    },
    "config": {"bot_configurations", "strategy_schemas"},
    "audit": {"system_events", "risk_events", "change_log", "backups", "scheduled_runs"},
}


def refused(constraint: str, error: type[Exception] = IntegrityError) -> pytest.RaisesExc:
    """Expect the database to refuse the statement, naming ``constraint``."""
    return pytest.raises(error, match=constraint)


def rows(sql: str, params: Sequence[Any] | None = None) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def execute(sql: str, params: Sequence[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


# --- what the migrations build --------------------------------------------------------------------


def test_models_and_migrations_agree() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_migrations_create_every_table_in_its_schema() -> None:
    """Every table but the partitions of trading.market_data (its months, made as they come)."""
    found = rows(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = ANY(%s) AND table_type = 'BASE TABLE' "
        "AND NOT (format('%%I.%%I', table_schema, table_name)::regclass::oid "
        "IN (SELECT inhrelid FROM pg_inherits))",
        [list(SCHEMA_TABLES)],
    )
    by_schema: dict[str, set[str]] = {schema: set() for schema in SCHEMA_TABLES}
    for schema, table in found:
        by_schema[str(schema)].add(str(table))
    assert by_schema == SCHEMA_TABLES


def test_migrations_create_the_materialized_views_with_a_unique_index() -> None:
    views = rows(
        "SELECT v.schemaname, v.matviewname, i.indexname FROM pg_matviews v "
        "JOIN pg_indexes i ON i.schemaname = v.schemaname AND i.tablename = v.matviewname "
        "WHERE i.indexdef LIKE 'CREATE UNIQUE INDEX%%' ORDER BY 2"
    )
    assert views == [
        ("analytics", "bot_daily_performance", "bot_daily_performance_bot_day_uniq"),
        ("analytics", "bot_performance_summary", "bot_performance_summary_bot_uniq"),
        ("analytics", "portfolio_daily_pnl", "portfolio_daily_pnl_day_uniq"),
    ]


def test_no_floating_point_column_in_the_four_schemas() -> None:
    floats = rows(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ANY(%s) AND data_type IN ('real', 'double precision')",
        [list(SCHEMA_TABLES)],
    )
    assert floats == []


def test_money_columns_have_the_schema_precision() -> None:
    found = rows(
        "SELECT column_name, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = 'trading' AND table_name = 'trades' "
        "AND column_name IN ('quantity', 'entry_price', 'fees_usd', 'pnl_usd', 'pnl_pct') "
        "ORDER BY column_name"
    )
    assert found == [
        ("entry_price", 28, 10),
        ("fees_usd", 20, 8),
        ("pnl_pct", 12, 6),
        ("pnl_usd", 20, 8),
        ("quantity", 28, 10),
    ]


def test_every_timestamp_is_timestamptz() -> None:
    naive = rows(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ANY(%s) AND data_type = 'timestamp without time zone'",
        [list(SCHEMA_TABLES)],
    )
    assert naive == []


def test_the_materialized_views_refresh_concurrently() -> None:
    bot = make_bot()
    make_trade(
        bot,
        status="closed",
        exit_price=Decimal("61000"),
        exit_time=T0 + timedelta(hours=2),
        pnl_usd=Decimal("500"),
    )
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW analytics.bot_daily_performance")
        cursor.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY analytics.bot_daily_performance")
    assert rows("SELECT bot_id, day, trades, net_pnl_usd FROM analytics.bot_daily_performance") == [
        (bot.bot_id, T0.date(), 1, Decimal("500.00000000"))
    ]


# --- trades ---------------------------------------------------------------------------------------


def test_a_second_trade_with_the_same_bot_and_trade_id_is_refused() -> None:
    bot = make_bot()
    make_trade(bot, trade_id="abc")
    with refused("trades_bot_trade_id_uniq"), transaction.atomic():
        make_trade(bot, trade_id="abc", quantity=Decimal("2"))
    assert list(Trade.objects.values_list("trade_id", "quantity")) == [("abc", Decimal("0.5"))]


def test_the_same_trade_id_under_another_bot_is_a_different_trade() -> None:
    make_trade(make_bot(), trade_id="abc")
    make_trade(make_bot(), trade_id="abc")
    assert Trade.objects.filter(trade_id="abc").count() == 2


@pytest.mark.parametrize("quantity", [Decimal("0"), Decimal("-1")])
def test_a_trade_quantity_not_above_zero_is_refused(quantity: Decimal) -> None:
    bot = make_bot()
    with refused("trades_quantity_positive"), transaction.atomic():
        make_trade(bot, quantity=quantity)
    assert Trade.objects.count() == 0


def test_a_trade_exiting_before_its_entry_is_refused() -> None:
    bot = make_bot()
    with refused("trades_exit_after_entry"), transaction.atomic():
        make_trade(
            bot,
            status="closed",
            exit_price=Decimal("1"),
            exit_time=T0 - timedelta(seconds=1),
            pnl_usd=Decimal("0"),
        )
    assert Trade.objects.count() == 0


def test_a_closed_trade_without_pnl_is_refused() -> None:
    bot = make_bot()
    with refused("trades_closed_has_exit_and_pnl"), transaction.atomic():
        make_trade(bot, status="closed", exit_price=Decimal("1"), exit_time=T0)
    assert Trade.objects.count() == 0


def test_an_unknown_enumeration_value_is_refused() -> None:
    bot = make_bot()
    with refused("trades_side_valid"), transaction.atomic():
        make_trade(bot, side="LONG")
    assert Trade.objects.count() == 0


def test_a_bot_with_trades_cannot_be_deleted() -> None:
    bot = make_bot()
    make_trade(bot)
    with refused("violates foreign key constraint"), transaction.atomic():
        # Django's FKs are DEFERRABLE INITIALLY DEFERRED: check now, not at a commit.
        execute("SET CONSTRAINTS ALL IMMEDIATE")
        execute("DELETE FROM trading.bots WHERE bot_id = %s", [bot.bot_id])
    assert Bot.objects.filter(pk=bot.pk).exists()


# --- positions and orders -------------------------------------------------------------------------


def test_a_second_open_position_for_the_same_bot_symbol_and_side_is_refused() -> None:
    bot = make_bot()
    make_position(bot)
    with refused("positions_one_open_per_bot_symbol_side"), transaction.atomic():
        make_position(bot, status="partially_closed")
    assert Position.objects.count() == 1


def test_a_closed_position_does_not_block_a_new_one() -> None:
    bot = make_bot()
    make_position(bot, status="closed", quantity=Decimal("0"), closed_at=T0 + timedelta(hours=1))
    make_position(bot)
    assert sorted(Position.objects.values_list("status", flat=True)) == ["closed", "open"]


def test_an_order_filled_beyond_its_quantity_is_refused() -> None:
    bot = make_bot()
    with refused("orders_filled_within_quantity"), transaction.atomic():
        Order.objects.create(
            bot=bot,
            client_order_id="o-1",
            symbol="BTC/USDT",
            side="buy",
            order_type="market",
            quantity=Decimal("1"),
            filled_quantity=Decimal("1.0000000001"),
        )
    assert Order.objects.count() == 0


# --- market data ----------------------------------------------------------------------------------


def test_a_candle_with_high_below_low_is_refused() -> None:
    with refused("market_data_high_gte_low"), transaction.atomic():
        make_candle(
            open=Decimal("100"), close=Decimal("100"), high=Decimal("99"), low=Decimal("101")
        )
    assert MarketData.objects.count() == 0


def test_the_same_candle_twice_is_refused() -> None:
    make_candle()
    with refused("market_data_candle_uniq"), transaction.atomic():
        make_candle(close=Decimal("106"))
    assert list(MarketData.objects.values_list("close", flat=True)) == [Decimal("105")]


# --- configurations -------------------------------------------------------------------------------


def make_version(bot: Bot, version: int, **fields: object) -> BotConfiguration:
    values: dict[str, object] = {
        "bot": bot,
        "version": version,
        "config": {"v": version},
        "effective_from": T0,
        "effective_to": None,
        "is_active": True,
    }
    values.update(fields)
    return BotConfiguration.objects.create(**values)


def test_a_second_active_configuration_for_a_bot_is_refused() -> None:
    bot = make_bot()
    make_version(bot, 1, effective_from=T0 + timedelta(days=1))
    # Two active versions are both open-ended, so the range exclusion catches it first.
    with refused("bot_configurations_(no_overlap|one_active)"), transaction.atomic():
        make_version(bot, 2, effective_from=T0 + timedelta(days=2))
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [1]


def test_the_one_active_index_refuses_a_second_active_version_on_its_own() -> None:
    # DDL is transactional in PostgreSQL: the test's rollback restores the constraint.
    execute("ALTER TABLE config.bot_configurations DROP CONSTRAINT bot_configurations_no_overlap")
    bot = make_bot()
    make_version(bot, 1, effective_from=T0 + timedelta(days=1))
    with refused("bot_configurations_one_active"), transaction.atomic():
        make_version(bot, 2, effective_from=T0 + timedelta(days=2))
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [1]


def test_overlapping_effective_ranges_of_one_bot_are_refused() -> None:
    bot = make_bot()
    make_version(bot, 1, effective_to=T0 + timedelta(days=2), is_active=False)
    with refused("bot_configurations_no_overlap"), transaction.atomic():
        make_version(
            bot,
            2,
            effective_from=T0 + timedelta(days=1),
            effective_to=T0 + timedelta(days=3),
            is_active=False,
        )
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [1]


def test_ranges_that_meet_do_not_overlap_and_other_bots_are_independent() -> None:
    bot, other = make_bot(), make_bot()
    make_version(bot, 1, effective_to=T0 + timedelta(days=1), is_active=False)
    make_version(bot, 2, effective_from=T0 + timedelta(days=1))
    make_version(other, 1)
    assert BotConfiguration.objects.count() == 3


def test_a_duplicate_version_number_is_refused() -> None:
    bot = make_bot()
    make_version(bot, 1, effective_to=T0 + timedelta(days=1), is_active=False)
    with refused("bot_configurations_version_uniq"), transaction.atomic():
        make_version(bot, 1, effective_from=T0 + timedelta(days=2))
    assert BotConfiguration.objects.count() == 1


# --- audit ----------------------------------------------------------------------------------------


def test_system_events_are_append_only() -> None:
    event = system_event_record(component="test", event_type="probe", message="hello")
    with refused("append-only: UPDATE refused", ProgrammingError), transaction.atomic():
        execute("UPDATE audit.system_events SET message = 'changed' WHERE id = %s", [event.pk])
    with refused("append-only: DELETE refused", ProgrammingError), transaction.atomic():
        execute("DELETE FROM audit.system_events WHERE id = %s", [event.pk])
    assert rows("SELECT message FROM audit.system_events") == [("hello",)]


def test_django_sees_every_table_of_our_schemas_so_flush_empties_them() -> None:
    # Transactional tests flush the database with TRUNCATE over the tables Django finds.
    # analytics.bot_trade_versions has no model and is left alone: its versions only go up, and
    # a cached summary's key holds the version's time too, so an old entry never matches again.
    found = set(connection.introspection.django_table_names(only_existing=True))
    for schema, tables in SCHEMA_TABLES.items():
        for table in tables - {"bot_trade_versions"}:
            assert f'{schema}"."{table}' in found
