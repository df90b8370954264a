"""`manage.py bench --quick`: every figure measured, and the scratch database gone afterwards."""

import json
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.urls import Resolver404, resolve

from trading.bench.scratch import PgServer, database_exists

ROOT = Path(settings.BASE_DIR)
OPERATIONS = {"trade_single_post", "trade_batch_post", "candle_batch_post"}


def market_data_is_routed() -> bool:
    try:
        resolve("/api/v1/market-data/")
    except Resolver404:
        return False
    return True


def test_bench_quick_measures_every_operation_and_drops_its_database(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    run = subprocess.run(  # noqa: S603 - our interpreter and manage.py
        [sys.executable, "manage.py", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("operation ")
    report = json.loads(out.read_text())
    operations = {op["name"]: op for op in report["operations"]}
    assert set(operations) == OPERATIONS
    if market_data_is_routed():
        assert operations["candle_batch_post"]["available"], operations["candle_batch_post"]
    for name, op in operations.items():
        assert op["baseline"]["p50"] > 0, name
        assert op["baseline"]["p95"] > 0, name
        if not op["available"]:
            continue
        assert op["samples"] == (200 if name == "trade_single_post" else 3), name
        assert min(op["p50"], op["p95"], op["p99"], op["ratio"]) > 0, name
        assert isinstance(op["met"], bool), name
    assert operations["trade_single_post"]["unit"] == "ms"
    assert operations["trade_batch_post"]["unit"] == "trades/s"

    assert re.fullmatch(r"\w+_bench_\d+", report["database"])
    assert report["database_dropped"] is True
    assert not database_exists(PgServer.from_settings(), report["database"])
