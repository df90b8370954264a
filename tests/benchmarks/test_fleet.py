"""`manage.py bench --fleet` small, against a real gunicorn under production settings: every
endpoint a bot or the dashboard uses is exercised with no error, the run keeps to its duration,
and the report carries every figure (not their speed: a smoke run on a shared machine)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmarks.bench.fleet_probe import tree_cpu_seconds
from benchmarks.bench.scratch import PgServer, database_exists
from tests.benchmarks.running import run_bench

BOT_ENDPOINTS = {
    "POST heartbeat/",
    "POST orders/",
    "POST trades/",
    "POST balances/",
    "POST market-data/",
}
DASHBOARD_ENDPOINTS = {
    "GET dashboard/ (HTML)",
    "GET portfolio/summary/",
    "GET portfolio/snapshots/",
    "GET positions/ (open)",
    "GET risk-events/",
    "GET portfolio/performance/",
    "GET dashboard/bots/{bot_id}/ (HTML)",
    "GET bots/{bot_id}/summary/",
    "GET bots/{bot_id}/equity/",
    "GET bots/{bot_id}/performance/",
    "GET bots/{bot_id}/breakdown/",
    "GET trades/ (a bot's 20)",
}
DURATION = 10


def test_a_small_fleet_exercises_every_endpoint_without_an_error(tmp_path: Path) -> None:
    server = PgServer.from_settings()
    out = tmp_path / "fleet.json"

    run = run_bench(
        [
            *("--fleet", "5", "--duration", str(DURATION), "--workers", "2"),
            *("--trade-every", "1"),  # a trade's whole life (six steps) within the run
            *("--json", str(out)),
        ],
        timeout=120,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("endpoint ")
    report = json.loads(out.read_text())
    endpoints = {row["endpoint"]: row for row in report["endpoints"]}
    assert set(endpoints) == BOT_ENDPOINTS | DASHBOARD_ENDPOINTS
    assert report["errors"] == []
    for name, row in endpoints.items():
        assert row["errors"] == 0, name
        assert row["requests"] >= 1, name
        assert 0 < row["p50"] <= row["p95"] <= row["p99"] <= row["max"], name
        assert row["throughput"] > 0, name
    # Heartbeats every 5 s (+/- 20 %) from bots started within the first 5 s: 1 to 3 each.
    assert 5 <= endpoints["POST heartbeat/"]["requests"] <= 15
    # A trade opened and closed per bot at least: its trade POSTs and its four order updates.
    assert endpoints["POST trades/"]["requests"] >= 5
    assert endpoints["POST orders/"]["requests"] >= 10
    totals = {row["endpoint"]: row for row in report["totals"]}
    assert totals["overall"]["requests"] == sum(r["requests"] for r in endpoints.values())
    assert totals["overall"]["errors"] == 0
    assert isinstance(report["met"], bool)
    assert DURATION <= report["wall_seconds"] < DURATION + 10

    cpu = report["cpu"]
    for side in ("postgresql", "postgresql_run_backends", "gunicorn", "client"):
        assert cpu[side]["cpu_seconds"] > 0, side
    assert 0 < cpu["database_share"] < 1
    assert 0 < cpu["database_share_run_backends"] < 1
    assert 0 <= cpu["machine"]["busy_share"] <= 1
    assert cpu["postgresql_run_backends"]["cpu_seconds"] <= cpu["postgresql"]["cpu_seconds"]
    assert report["pg_activity"]["samples"] >= DURATION  # four a second
    assert report["pg_activity"]["backends"] >= 2  # a connection per worker at least
    windows = report["windows"]
    assert len(windows) in (DURATION // 10, DURATION // 10 + 1)
    assert sum(w["requests"] for w in windows) == totals["overall"]["requests"]
    assert windows[0]["run_cores"] > 0
    assert windows[0]["machine_cores"] > 0
    assert isinstance(report["client"]["saturated"], bool)
    assert report["client"]["loop_lag_p99_ms"] >= 0
    env = report["environment"]
    assert env["gunicorn_workers"] == 2
    assert env["gunicorn_workers_seen"] == 2
    assert env["postgresql"].startswith("PostgreSQL ")
    assert report["options"]["bots"] == 5

    assert re.fullmatch(r"\w+_bench_\d+", report["database"])
    assert report["database_dropped"] is True
    assert not database_exists(server, report["database"])


def test_a_process_trees_cpu_counts_a_child_that_ended_during_the_run() -> None:
    # A backend whose connection closed, a gunicorn worker replaced: their CPU is the run's.
    before = tree_cpu_seconds(os.getpid())
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # noqa: S603 - our interpreter

    after = tree_cpu_seconds(os.getpid())

    assert before is not None
    assert after is not None
    assert after - before >= 0.3


def test_a_fleet_of_no_bots_is_refused() -> None:
    with pytest.raises(
        CommandError, match="--fleet, --duration and --trade-every must be positive"
    ):
        call_command("bench", "--fleet", "0")
