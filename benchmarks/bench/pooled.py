"""A single trade POST through PgBouncer, beside the same POST straight to PostgreSQL.

The bench starts PgBouncer itself (atb_site/db/pgbouncer.py: transaction pooling, the web's
timeouts set by its connect_query) in front of the scratch database's server, and a second
gunicorn behind it (DATABASE_PGBOUNCER, DATABASE_DIRECT_URL). The POSTs alternate one for one with
POSTs to the direct gunicorn, so a neighbour's load weighs on both sides alike; the figure is the
pooled p95 over the direct p95 (issue 15: at most 1.3x). Without a pgbouncer program the
operation is not available, and says so.
"""

from collections.abc import Callable
from pathlib import Path

from atb_site.db.pgbouncer import PgBouncer, binary
from benchmarks.bench.report import Operation
from benchmarks.bench.scratch import ScratchDatabase, gunicorn_server
from benchmarks.bench.workload import ApiClient, Row, to_json, trade_rows

Log = Callable[[str], None]

TRADES_URL = "/api/v1/trades/"


def pooled_single_op() -> Operation:
    op = Operation(
        name="trade_single_post_pgbouncer",
        label="POST trades/ (1 trade) through PgBouncer",
        rows_per_call=1,
        unit="ms",
        target=None,
        max_ratio=1.3,  # issue 15: p95 within 1.3x of the direct POST's in the same run
        ratio_metric="p95",
        baseline_label="POST trades/ (1 trade), direct",
    )
    if binary() is None:
        op.available = False
        op.note = "not available: pgbouncer is not installed (Debian: apt-get install pgbouncer)"
    return op


def pooled_singles(
    op: Operation,
    direct: ApiClient,
    *,
    token: str,
    scratch: ScratchDatabase,
    env: dict[str, str],
    workers: int,
    counts: tuple[int, int],
    folder: Path,
    log: Log,
) -> None:
    """``counts``: (warm-up, measured) POSTs on each side."""
    with PgBouncer(server_url=scratch.url, directory=folder / "pgbouncer", environ=env) as bouncer:
        log(f"pgbouncer (transaction pooling) is live on 127.0.0.1:{bouncer.port}")
        pooled_env = {
            **env,
            "DATABASE_URL": bouncer.url(),
            "DATABASE_DIRECT_URL": scratch.url,
            "DATABASE_PGBOUNCER": "true",
        }
        with gunicorn_server(
            env=pooled_env, workers=workers, log_path=folder / "gunicorn-pgbouncer.log", log=log
        ) as port:
            pooled = ApiClient(port, token)
            try:
                for kind, count in zip(("W", "S"), counts, strict=True):
                    pooled_rows = trade_rows(f"P{kind}", 0, count)
                    direct_rows = trade_rows(f"D{kind}", 0, count)
                    for n in range(count):
                        if n % 2:  # each side goes first every other time
                            base = _post_one(direct, direct_rows[n])
                            seconds = _post_one(pooled, pooled_rows[n])
                        else:
                            seconds = _post_one(pooled, pooled_rows[n])
                            base = _post_one(direct, direct_rows[n])
                        if kind == "S":
                            op.seconds.append(seconds)
                            op.baseline_seconds.append(base)
            finally:
                pooled.close()
    log(f"single trades through pgbouncer: {counts[1]} POSTs, each beside a direct one")


def _post_one(client: ApiClient, row: Row) -> float:
    return client.post_ok(TRADES_URL, to_json([row], single=True), expect={"created": 1})
