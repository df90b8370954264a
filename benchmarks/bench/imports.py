"""Import 100,000 Momentum trades: import_momentum's service beside a COPY of the same rows.

A synthetic Momentum-format SQLite file (the three time spellings, a few broken JSON texts,
REALs) is built in a temporary folder. Each sample runs the whole import (read, map, upsert,
the audit event) as a dry run, which does every write and rolls it back, so the configured
database is left as it was. The baseline COPYs the same trades, already typed, into
trading.trades in a transaction that is rolled back too.
"""

import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from benchmarks.bench.report import Operation, Target
from importers.core import import_run
from importers.momentum import momentum_job
from trading.models import Bot

Log = Callable[[str], None]

BENCH_BOT = "bench_import"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "ATOM/USDT")
COPY_COLUMNS = (
    "bot_id, trade_id, symbol, exchange, side, quantity, entry_price, exit_price, entry_time,"
    " exit_time, fees_usd, pnl_usd, pnl_pct, status, source, leverage, exit_reason, entry_tag,"
    " strategy_data, created_at, updated_at"
)


def momentum_file(path: Path, trades: int) -> list[tuple[Any, ...]]:
    """Write a Momentum-format SQLite file with ``trades`` trades; their unified values."""
    spellings = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S.000000Z")
    legacy, typed = [], []
    now = datetime.now(tz=UTC)
    for i in range(trades):
        entry = T0 + timedelta(minutes=5 * i)
        exit_ = entry + timedelta(minutes=90)
        quantity = 0.5 + (i % 977) / 1000
        entry_price = 100.0 + (i % 1013) * 0.731
        exit_price = entry_price * (1.004 if i % 3 else 0.995)
        pnl = (exit_price - entry_price) * quantity
        pct = pnl / (quantity * entry_price) * 100
        metadata = '{"rsi": 55' if i % 5000 == 7 else json.dumps({"rsi": i % 100, "tags": ["t"]})
        fmt = spellings[i % 3]
        legacy.append(
            (
                f"mom-{i:07d}",
                SYMBOLS[i % 4],
                "long",
                quantity,
                entry_price,
                exit_price,
                entry.strftime(fmt),
                exit_.strftime(fmt),
                pnl,
                pct,
                "take_profit",
                metadata,
            )
        )
        typed.append(
            (
                BENCH_BOT,
                f"mom-{i:07d}",
                SYMBOLS[i % 4],
                "binance",
                "long",
                Decimal(repr(quantity)),
                Decimal(repr(entry_price)),
                Decimal(repr(exit_price)),
                entry,
                exit_,
                0,
                Decimal(repr(pnl)).quantize(Decimal("1e-8")),
                Decimal(repr(pct)).quantize(Decimal("1e-6")),
                "closed",
                "imported",
                1,
                "take_profit",
                "",
                json.dumps({"rsi": i % 100, "legacy": {"table": "trades", "id": i + 1}}),
                now,
                now,
            )
        )
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE trades (id INTEGER PRIMARY KEY AUTOINCREMENT, trade_id TEXT UNIQUE
                NOT NULL, symbol TEXT NOT NULL, direction TEXT NOT NULL, quantity REAL NOT NULL,
                entry_price REAL NOT NULL, exit_price REAL, entry_time TEXT NOT NULL,
                exit_time TEXT, pnl_usd REAL, pnl_pct REAL, exit_reason TEXT, metadata TEXT);
            CREATE TABLE positions (symbol TEXT PRIMARY KEY, direction TEXT NOT NULL,
                quantity REAL NOT NULL, entry_price REAL NOT NULL, trailing_stop REAL,
                highest_price REAL, opened_at TEXT NOT NULL);
            CREATE TABLE equity_snapshots (ts INTEGER PRIMARY KEY, equity REAL NOT NULL,
                cash REAL NOT NULL);
            INSERT INTO positions VALUES
                ('SOL/USDT', 'long', 2.5, 150.25, 147.1, 152.0, '2024-06-01T00:00:00Z');
            """
        )
        conn.executemany(
            "INSERT INTO trades (trade_id, symbol, direction, quantity, entry_price, exit_price,"
            " entry_time, exit_time, pnl_usd, pnl_pct, exit_reason, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            legacy,
        )
        start_ms = int(T0.timestamp() * 1000)
        conn.executemany(
            "INSERT INTO equity_snapshots VALUES (?, ?, ?)",
            [(start_ms + h * 3_600_000, 10_000.0 + h * 0.37, 6_000.0) for h in range(1_000)],
        )
    conn.close()
    return typed


def _import_size(quick: bool) -> int:
    return 2_000 if quick else 100_000


def momentum_import_op(*, quick: bool) -> Operation:
    trades = _import_size(quick)
    return Operation(
        name="momentum_import",
        label=f"import_momentum ({trades:,} trades)",
        rows_per_call=trades,
        unit="trades/s",
        target=Target("p50", ">=", 100_000 / 60),  # issue 6: 100,000 trades in under a minute
        baseline_label=f"COPY {trades:,} rows",
    )


def momentum_import_measure(op: Operation, *, quick: bool, log: Log) -> None:
    trades = _import_size(quick)
    samples = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="atb-bench-import-") as tmp:
        path = Path(tmp) / "trading.db"
        typed = momentum_file(path, trades)
        for _ in range(samples):
            started = time.perf_counter()
            report = import_run(momentum_job(source=str(path), bot_id=BENCH_BOT), dry_run=True)
            op.seconds.append(time.perf_counter() - started)
            if report.tables["trades"].created != trades:
                op.available = False
                op.note = f"not available: the import created {report.tables['trades']}"
                break
            op.baseline_seconds.append(_copy(typed))
    log(f"momentum import: {samples} x {trades:,} trades")


def _copy(rows: list[tuple[Any, ...]]) -> float:
    """COPY the trades in one transaction, then roll it back."""
    with transaction.atomic():
        Bot.objects.create(
            bot_id=BENCH_BOT,
            name="Benchmark (import)",
            strategy_type="benchmark",
            exchange="binance",
            initial_capital_usd=Decimal(10_000),
        )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor, for COPY
            with raw.copy(f"COPY trading.trades ({COPY_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds
