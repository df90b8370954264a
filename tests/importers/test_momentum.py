"""import_momentum on the sample SQLite file (shared/legacy/momentum.db), read in place."""

import shutil
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from audit.models import SystemEvent
from tests.importers.legacy_support import MOMENTUM_DB, counts, snapshot
from trading.models import AccountBalance, Position, Trade

pytestmark = pytest.mark.django_db

# sqlite3 momentum.db: trades 240 (2 without exit_time: open), positions 2,
# equity_snapshots 448; json_valid(metadata) = 0 for 000068, 000089, 000203.
BROKEN_JSON = ["mom-20250321-000068", "mom-20250321-000089", "mom-20250321-000203"]


def run(path: Path | str, *args: str) -> str:
    out = StringIO()
    call_command("import_momentum", "--source", str(path), *args, stdout=out)
    return out.getvalue()


def table_line(output: str, table: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.strip().startswith(table + " "))
    return line.split()[1:]


def test_imports_every_table_with_exact_counts() -> None:
    output = run(MOMENTUM_DB)

    assert table_line(output, "trades") == ["240", "240", "0", "0", "0"]
    assert table_line(output, "positions") == ["2", "2", "0", "0", "0"]
    assert table_line(output, "account_balance") == ["448", "448", "0", "0", "0"]
    assert Trade.objects.filter(bot_id="momentum_001", status="open").count() == 2
    # The sample's last activity is in 2025: its open positions are imported closed (stale).
    assert Position.objects.filter(bot_id="momentum_001", status="closed").count() == 2


def test_pnl_sum_equals_the_legacy_sum_to_the_cent() -> None:
    run(MOMENTUM_DB)

    with sqlite3.connect(f"{MOMENTUM_DB.as_uri()}?mode=ro", uri=True) as conn:
        (legacy,) = conn.execute("SELECT sum(pnl_usd) FROM trades").fetchone()
    imported = Trade.objects.filter(bot_id="momentum_001").aggregate(s=Sum("pnl_usd"))["s"]
    assert imported.quantize(Decimal("0.01")) == Decimal(repr(legacy)).quantize(Decimal("0.01"))
    assert imported == Decimal("10931.57615709")


def test_broken_json_is_kept_and_warned_with_the_trade_id() -> None:
    output = run(MOMENTUM_DB)

    for trade_id in BROKEN_JSON:
        assert f"trades {trade_id}: metadata is not valid JSON" in output
        trade = Trade.objects.get(bot_id="momentum_001", trade_id=trade_id)
        assert trade.strategy_data["legacy_raw"] == "{rsi: 55"
    ok = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000000")
    assert ok.strategy_data == {
        "rsi": 51.16,
        "atr": 0.643,
        "tags": ["trend", "news"],
        "legacy": {"table": "trades", "id": 1},
    }


@pytest.mark.parametrize(
    ("trade_id", "legacy_text", "utc"),
    [
        ("mom-20250321-000000", "2025-03-21 06:59:00", datetime(2025, 3, 21, 6, 59, tzinfo=UTC)),
        (
            "mom-20250321-000001",
            "2025-03-21T08:17:00+00:00",
            datetime(2025, 3, 21, 8, 17, tzinfo=UTC),
        ),
        (
            "mom-20250321-000002",
            "2025-03-21T13:04:00.000000Z",
            datetime(2025, 3, 21, 13, 4, tzinfo=UTC),
        ),
    ],
)
def test_the_three_time_spellings_are_read_as_utc(
    trade_id: str, legacy_text: str, utc: datetime
) -> None:
    run(MOMENTUM_DB)

    assert Trade.objects.get(bot_id="momentum_001", trade_id=trade_id).entry_time == utc


def test_reals_go_through_their_shortest_text_then_half_even(tmp_path: Path) -> None:
    copy = tmp_path / "trading.db"
    shutil.copy(MOMENTUM_DB, copy)
    with sqlite3.connect(copy) as conn:
        # Exactly, 1.00000000005 is 1.0000000000500000041...: rounded to 10 places it would be
        # 1.0000000001; its shortest text ends in a 5, which half-even rounds to ...0000.
        # Likewise 10.000000005 (8 places for USD): 10.00000000, not 10.00000001.
        conn.execute(
            "UPDATE trades SET quantity = 1.00000000005, pnl_usd = 10.000000005"
            " WHERE trade_id = 'mom-20250321-000000'"
        )
    conn.close()

    run(copy)

    trade = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000000")
    assert trade.quantity == Decimal("1.0000000000")
    assert trade.pnl_usd == Decimal("10.00000000")
    plain = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000001")
    assert plain.quantity == Decimal("188.298051")
    assert plain.pnl_pct == Decimal("-1.164236")  # -1.16423620026536


def test_equity_snapshots_epoch_ms_become_imported_balances() -> None:
    run(MOMENTUM_DB)

    first = AccountBalance.objects.filter(bot_id="momentum_001").order_by("ts").first()
    assert first is not None
    # ts 1742515200000, equity 9983.13372315993, cash 6561.68916098174
    assert first.ts == datetime(2025, 3, 21, 0, 0, tzinfo=UTC)
    assert (first.equity_usd, first.balance_usd, first.snapshot_type) == (
        Decimal("9983.13372316"),
        Decimal("6561.68916098"),
        "imported",
    )
    assert first.metadata == {"legacy": {"table": "equity_snapshots", "ts": 1742515200000}}


def test_positions_keep_trailing_stop_and_highest_price() -> None:
    run(MOMENTUM_DB, "--stale-after", "never")

    sol = Position.objects.get(bot_id="momentum_001", symbol="SOL/USDT")
    assert (sol.side, sol.quantity, sol.avg_entry_price) == (
        "long",
        Decimal("235.139609"),
        Decimal("174.50582"),
    )
    assert (sol.trailing_stop_price, sol.highest_price) == (
        Decimal("169.270645"),
        Decimal("177.995936"),
    )
    assert sol.opened_at == datetime(2025, 6, 2, 20, 2, tzinfo=UTC)


def test_a_second_run_changes_nothing_and_dry_run_writes_nothing() -> None:
    before_dry = counts()
    dry = run(MOMENTUM_DB, "--dry-run")
    assert counts() == before_dry
    assert not SystemEvent.objects.filter(component="importer").exists()

    first = run(MOMENTUM_DB)
    assert table_line(dry, "trades") == table_line(first, "trades")
    before = snapshot()
    second = run(MOMENTUM_DB)

    after = snapshot()
    assert "nothing to do: already imported" in second
    assert table_line(second, "trades") == ["240", "0", "0", "240", "0"]
    assert len(after.pop("audit.system_events")) == len(before.pop("audit.system_events")) + 1
    assert after == before
    assert SystemEvent.objects.filter(event_type="import_completed").count() == 2


def test_a_broken_source_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    copy = tmp_path / "trading.db"
    shutil.copy(MOMENTUM_DB, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE trades SET direction = 'flat' WHERE trade_id = 'mom-20250321-000005'")
    conn.close()
    before = snapshot()

    with pytest.raises(CommandError, match="trades mom-20250321-000005: direction: 'flat'"):
        run(copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DROP TABLE equity_snapshots")
    conn.close()
    with pytest.raises(CommandError, match="table equity_snapshots is missing"):
        run(copy)
    with pytest.raises(CommandError, match="no such SQLite file"):
        run(tmp_path / "missing.db")

    assert snapshot() == before
    assert not (tmp_path / "missing.db").exists()
