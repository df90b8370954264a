"""import_shortseller on the sample dump (shared/legacy/shortseller.sql), loaded into a scratch
PostgreSQL database on the test server."""

from collections.abc import Iterator
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from audit.models import SystemEvent
from tests.importers.legacy_support import (
    SHORTSELLER_SQL,
    counts,
    scratch_database,
    snapshot,
    source_query,
)
from trading.models import AccountBalance, Bot, Position, Signal, Trade

pytestmark = pytest.mark.django_db

# Figures of the sample, by SQL on the loaded dump:
# SELECT count(*) FROM trades -> 306; 6 groups of 2 rows equal in every column but id
# (GROUP BY every other column HAVING count(*) > 1: ids 41/42, 44/45, 118/119, 157/158,
# 173/174, 210/211) -> 300 trades; 2 open; positions 2, signals 600, balance_history 253.
TRADES_READ, TRADES, DUPLICATES = 306, 300, 6
POSITIONS, SIGNALS, BALANCES = 2, 600, 253
# SUM(pnl) over the distinct rows (the duplicates once): -9142.69218447.
PNL_SUM = Decimal("-9142.69218447")


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    with scratch_database(SHORTSELLER_SQL.read_text(encoding="utf-8")) as url:
        yield url


def run(url: str, *args: str) -> str:
    out = StringIO()
    call_command("import_shortseller", "--source-url", url, *args, stdout=out)
    return out.getvalue()


def table_line(output: str, table: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.strip().startswith(table + " "))
    return line.split()[1:]


def test_imports_every_table_with_exact_counts(source: str) -> None:
    output = run(source)

    assert table_line(output, "trades") == ["306", "300", "0", "0", "6"]
    assert table_line(output, "positions") == ["2", "2", "0", "0", "0"]
    assert table_line(output, "signals") == ["600", "600", "0", "0", "0"]
    assert table_line(output, "account_balance") == ["253", "253", "0", "0", "0"]
    bot = Bot.objects.get(pk="shortseller_001")
    assert bot.initial_capital_usd == Decimal("25114.33")  # the first balance_history row
    assert Trade.objects.filter(bot=bot).count() == TRADES
    assert Trade.objects.filter(bot=bot, status="open").count() == 2
    # The sample's last activity is in 2025: its open positions are imported closed (stale).
    assert Position.objects.filter(bot=bot, status="closed").count() == POSITIONS
    assert Signal.objects.filter(bot=bot).count() == SIGNALS
    assert AccountBalance.objects.filter(bot=bot, snapshot_type="imported").count() == BALANCES


def test_pnl_sum_equals_the_legacy_sum_to_the_cent(source: str) -> None:
    run(source)

    (legacy_sum,) = source_query(
        source,
        "SELECT sum(pnl) FROM (SELECT DISTINCT symbol, side, qty, entry_price, exit_price,"
        ' "timestamp", executed_at, pnl, status, strategy, notes FROM trades) AS t',
    )[0]
    imported = Trade.objects.filter(bot_id="shortseller_001").aggregate(s=Sum("pnl_usd"))["s"]
    assert imported == legacy_sum == PNL_SUM
    assert imported.quantize(Decimal("0.01")) == Decimal("-9142.69")


def test_a_trade_maps_every_column(source: str) -> None:
    run(source)

    # INSERT #1: ('BTCUSDT', 'SELL', 0.3715, 61291.75215504, 61463.24591849,
    # '2025-03-21 02:39:25', '2025-03-22 07:12:25', -63.70993312, 'closed',
    # 'funding_fade', 'tp hit')
    trade = Trade.objects.get(bot_id="shortseller_001", trade_id="ss-1")
    assert (trade.symbol, trade.side, trade.status, trade.source) == (
        "BTC/USDT",
        "short",
        "closed",
        "imported",
    )
    assert trade.quantity == Decimal("0.3715")
    assert trade.entry_time.isoformat() == "2025-03-21T02:39:25+00:00"
    assert trade.exit_time is not None
    assert trade.exit_time.isoformat() == "2025-03-22T07:12:25+00:00"
    assert trade.pnl_usd == Decimal("-63.70993312")
    # -63.70993312 / (0.3715 x 61291.75215504) x 100, half-even to 6 places
    assert trade.pnl_pct == Decimal("-0.279799")  # -0.27979908...
    assert trade.strategy_data == {
        "strategy": "funding_fade",
        "notes": "tp hit",
        "legacy": {"table": "trades", "id": 1, "symbol": "BTCUSDT"},
    }
    eth_btc = Trade.objects.get(bot_id="shortseller_001", trade_id="ss-3")
    assert (eth_btc.symbol, eth_btc.side) == ("ETH/BTC", "short")
    assert Trade.objects.get(bot_id="shortseller_001", trade_id="ss-2").side == "long"


def test_a_duplicate_group_is_imported_once(source: str) -> None:
    output = run(source)

    assert (
        Trade.objects.filter(bot_id="shortseller_001", trade_id__in=["ss-41", "ss-42"]).count() == 1
    )
    kept = Trade.objects.get(bot_id="shortseller_001", trade_id="ss-41")
    assert kept.strategy_data["legacy"]["duplicate_ids"] == [42]
    assert "trades id 42: duplicate of id 41" in output
    assert "duplicates (6, not imported):" in output


def test_positions_signals_and_balances_keep_their_legacy_columns(source: str) -> None:
    run(source, "--stale-after", "never")

    position = Position.objects.get(bot_id="shortseller_001", symbol="ADA/USDT")
    assert (position.side, position.quantity, position.stop_loss) == (
        "short",
        Decimal("923.042"),
        Decimal("0.39091617"),
    )
    assert position.metadata["legacy"]["updated_at"] == "2025-05-22T11:33:30"
    # signal id 3: ('LINKUSDT', 'short_entry', 0.6554, 17.46747498, '2025-03-21 13:44:00', TRUE,
    # 'volume filter failed')
    signal = Signal.objects.get(metadata__legacy__id=3, bot_id="shortseller_001")
    assert (signal.symbol, signal.direction, signal.executed, signal.strength) == (
        "LINK/USDT",
        "short",
        True,
        Decimal("0.6554"),
    )
    assert signal.metadata["legacy"]["reason"] == "volume filter failed"
    first = AccountBalance.objects.filter(bot_id="shortseller_001").order_by("ts").first()
    assert first is not None
    assert (first.balance_usd, first.equity_usd, first.margin_used_usd) == (
        Decimal("25114.33"),
        Decimal("25186.51"),
        Decimal("1369.05"),
    )


def test_a_second_run_changes_nothing_and_says_so(source: str) -> None:
    run(source)
    before = snapshot()

    output = run(source)

    after = snapshot()
    assert table_line(output, "trades") == ["306", "0", "0", "300", "6"]
    assert "nothing to do: already imported" in output
    events = after.pop("audit.system_events")
    assert events[: len(before.pop("audit.system_events"))]  # one more event: the second run's
    assert after == before


def test_dry_run_writes_nothing_and_counts_what_a_real_run_writes(source: str) -> None:
    before = counts()

    dry = run(source, "--dry-run")

    assert counts() == before
    assert "dry run: nothing written" in dry
    real = run(source)
    for table in ("trades", "positions", "signals", "account_balance"):
        assert table_line(dry, table) == table_line(real, table)
    assert counts()["trading.trades"] == before["trading.trades"] + TRADES


def test_one_audit_event_per_real_run_none_on_dry_run(source: str) -> None:
    run(source, "--dry-run")
    assert not SystemEvent.objects.filter(component="importer").exists()

    run(source)

    event = SystemEvent.objects.get(component="importer")
    assert event.event_type == "import_completed"
    assert event.bot_id == "shortseller_001"
    assert event.details["tables"]["trades"] == {
        "read": 306,
        "created": 300,
        "updated": 0,
        "already_present": 0,
        "duplicates": 6,
    }
    assert event.details["source"].startswith("postgresql://")


def test_the_password_never_reaches_the_report_or_the_audit(source: str) -> None:
    user_at_host = source.split("://", 1)[1]
    with_password = f"postgresql://{user_at_host.replace('@', ':s3cret-pw@', 1)}"

    output = run(with_password)  # the test server trusts local connections: any password

    assert "s3cret-pw" not in output
    assert source in output
    assert "s3cret-pw" not in str(SystemEvent.objects.get(component="importer").details)


def broken(sql: str) -> Iterator[str]:
    with scratch_database(SHORTSELLER_SQL.read_text(encoding="utf-8") + sql) as url:
        yield url


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("DROP TABLE signals;", "table public.signals is missing"),
        ("UPDATE trades SET side = 'SHORT' WHERE id = 5;", "trades ss-5: side: 'SHORT'"),
        ("UPDATE trades SET qty = 0 WHERE id = 7;", "trades ss-7: qty:"),
        (
            "UPDATE trades SET executed_at = '2025-03-01' WHERE id = 9;",
            "trades ss-9: executed_at",
        ),
    ],
)
def test_a_broken_source_is_refused_and_nothing_is_written(damage: str, message: str) -> None:
    before = snapshot()
    for url in broken(damage):
        with pytest.raises(CommandError, match=message.replace("(", r"\(")):
            run(url)
    assert snapshot() == before


def test_an_unreachable_source_is_refused() -> None:
    with pytest.raises(CommandError, match="cannot open"):
        run("postgresql://postgres@127.0.0.1:1/nothing")
