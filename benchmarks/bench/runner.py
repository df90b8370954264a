"""The run: ingestion on a scratch database through gunicorn, then the reads on the data set.

Ingestion: scratch database, bench bots and token, gunicorn, warm-up, measurements, clean-up.
Reads: reads.py (selectors and services in process), pages.py (HTTP and Chromium).

API calls and their raw-SQL twins alternate one for one, so a neighbour's load on this machine
weighs on both sides of each ratio alike.
"""

import json
import os
import platform
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
from django.db import connection
from django.utils import timezone

from benchmarks.bench.browser import dashboard_ops
from benchmarks.bench.imports import momentum_import_measure, momentum_import_op
from benchmarks.bench.pages import http_page_ops, page_operations, pages_unavailable
from benchmarks.bench.pooled import pooled_single_op, pooled_singles
from benchmarks.bench.predictions import (
    prediction_batch_op,
    prediction_batches,
    prediction_read_op,
    prediction_reads,
)
from benchmarks.bench.reads import (
    SELECTOR_OPS,
    SKIPPED,
    Repeats,
    attempt,
    dataset_subject,
    failed,
    selector_op,
    selector_operations,
    unavailable,
)
from benchmarks.bench.report import BenchReport, Operation, Target
from benchmarks.bench.scratch import (
    PgServer,
    ScratchDatabase,
    database_exists,
    gunicorn_server,
    scratch_database,
    server_env,
)
from benchmarks.bench.workload import (
    RAW_CANDLE_COPY,
    RAW_TRADE_COPY,
    ApiClient,
    candle_rows,
    candle_values,
    paper_bot,
    raw_copy,
    raw_insert_one,
    stored_trade,
    to_json,
    trade_rows,
)
from trading.models import ApiToken, Bot
from trading.services.tokens import PREFIX_LENGTH, TOKEN_PREFIX, token_hash

Log = Callable[[str], None]
Ingestion = Callable[[Operation, ApiClient, ScratchDatabase, "BenchOptions", Log], None]

API_BOT = "bench_api"
RAW_BOT = "bench_raw"  # the baselines' rows: same trade ids, another bot, no key collisions
TRADES_URL = "/api/v1/trades/"
CANDLES_URL = "/api/v1/market-data/"
# High enough never to throttle the bench; the counting itself still runs, as in production.
THROTTLE_RATE = "1000000000/s"


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    workers: int = 2
    trade_batch: int = 1_000
    candle_batch: int = 10_000
    skip: frozenset[str] = frozenset()  # operations not measured (reported not available)

    @property
    def singles(self) -> int:
        return 200 if self.quick else 2_000

    @property
    def single_warmup(self) -> int:
        return 20 if self.quick else 100

    @property
    def batches(self) -> int:
        return 3 if self.quick else 20

    @property
    def warmup_batches(self) -> int:
        return 0 if self.quick else 2

    @property
    def reads(self) -> Repeats:
        return Repeats(warmup=1, samples=3) if self.quick else Repeats(warmup=3, samples=30)

    @property
    def refreshes(self) -> Repeats:
        return Repeats(warmup=0, samples=2) if self.quick else Repeats(warmup=1, samples=5)

    @property
    def page_loads(self) -> Repeats:
        return Repeats(warmup=1, samples=2) if self.quick else Repeats(warmup=2, samples=10)


def run_bench(options: BenchOptions, *, log: Log) -> BenchReport:
    """Every operation, each reported not available (with why) when it fails: the run itself
    never aborts on one operation, nor on the scratch database or its gunicorn."""
    env = server_env(throttle_rate=THROTTLE_RATE)
    read = prediction_read_op()
    ingestion = [
        (_single_trades_op(), _single_trades),
        (_trade_batches_op(options), _trade_batches),
        (_candle_batches_op(options), _candle_batches),
        (prediction_batch_op(), _predictions(read, env["CACHE_KEY_PREFIX"])),
    ]
    pooled = pooled_single_op()
    report = BenchReport(
        quick=options.quick,
        database="-",
        environment={},
        operations=[ingestion[0][0], pooled, *(op for op, _ in ingestion[1:]), read],
        database_dropped=True,
    )
    report.environment = _environment(options)
    for op in (*(op for op, _ in ingestion), pooled, read):
        if op.name in options.skip:
            unavailable(op, SKIPPED)
    if read.available and ingestion[-1][0].name in options.skip:
        unavailable(read, "needs prediction_batch_post (skipped)")
    measured = [(op, run) for op, run in ingestion if op.available]
    scratch: ScratchDatabase | None = None
    try:
        if not measured and not pooled.available:  # no scratch database nor gunicorn for nothing
            raise _NothingToIngest
        with (
            tempfile.TemporaryDirectory(prefix="atb-bench-") as tmp,
            scratch_database(env=env, log=log) as db,
        ):
            scratch = db
            report.database = db.name
            token = _setup(db)
            with gunicorn_server(
                env={**env, "DATABASE_URL": db.url},
                workers=options.workers,
                log_path=Path(tmp) / "gunicorn.log",
                log=log,
            ) as port:
                client = ApiClient(port, token)
                try:
                    for op, run in measured:

                        def measure_one(op: Operation = op, run: Ingestion = run) -> None:
                            run(op, client, db, options, log)

                        attempt(op, measure_one, log)
                    if read.available and not read.seconds:
                        unavailable(read, "not measured: prediction_batch_post did not run")
                    if pooled.available:

                        def measure_pooled() -> None:
                            pooled_singles(
                                pooled,
                                client,
                                token=token,
                                scratch=db,
                                env=env,
                                workers=options.workers,
                                counts=(options.single_warmup, options.singles),
                                folder=Path(tmp),
                                log=log,
                            )

                        attempt(pooled, measure_pooled, log)
                finally:
                    client.close()
    except _NothingToIngest:
        pass
    except Exception as exc:  # the scratch database or its server: report, go on
        for op in report.operations:
            if op.available and not op.seconds:
                failed(op, exc, log)
    if scratch is not None:
        report.database_dropped = not database_exists(scratch.server, scratch.name)
    momentum = momentum_import_op(quick=options.quick)
    if momentum.name in options.skip:
        report.operations.append(unavailable(momentum, SKIPPED))
    else:
        report.operations.append(
            attempt(
                momentum,
                lambda: momentum_import_measure(momentum, quick=options.quick, log=log),
                log,
            )
        )
    report.operations += _read_operations(report, options, log)
    report.environment["load_average_end"] = _load()
    return report


def _read_operations(report: BenchReport, options: BenchOptions, log: Log) -> list[Operation]:
    """The reads, against the data set in the configured database (generate_dataset)."""
    subject = dataset_subject()
    if subject is None:
        why = "no data set in the configured database (run manage.py generate_dataset)"
        log(f"reads: {why}")
        return [unavailable(selector_op(name), why) for name in SELECTOR_OPS] + pages_unavailable(
            why
        )
    report.dataset = subject.as_json()
    server = PgServer.from_settings()
    try:
        with server.connect(server.configured_name) as raw:
            selectors = selector_operations(
                subject,
                raw=raw,
                cheap=options.reads,
                costly=options.refreshes,
                log=log,
                skip=options.skip,
            )
            pages = page_operations(
                subject,
                raw=raw,
                repeats=options.reads,
                browser_repeats=options.page_loads,
                workers=options.workers,
                log=log,
                skip=options.skip,
            )
    except Exception as exc:  # no connection to the data set: every read left
        why = f"failed: {type(exc).__name__}: {str(exc).strip()[:160]}"
        log(f"reads: {why}")
        return [unavailable(selector_op(name), why) for name in SELECTOR_OPS] + pages_unavailable(
            why
        )
    return selectors + pages


def operation_names() -> list[str]:
    """Every operation's name, in the order the bench measures them."""
    options = BenchOptions()
    ingestion = [
        _single_trades_op(),
        pooled_single_op(),
        _trade_batches_op(options),
        _candle_batches_op(options),
        prediction_batch_op(),
        prediction_read_op(),
    ]
    return [
        *(op.name for op in ingestion),
        momentum_import_op(quick=False).name,
        *SELECTOR_OPS,
        *(op.name for op in [*http_page_ops(), *dashboard_ops()]),
    ]


class _NothingToIngest(Exception):
    """Every ingestion operation is skipped."""


def _setup(scratch: ScratchDatabase) -> str:
    """The bench bots and the API bot's token; the token's key."""
    Bot.objects.using(scratch.alias).bulk_create(
        paper_bot(bot_id, name=f"Benchmark ({bot_id})", strategy_type="benchmark")
        for bot_id in (API_BOT, RAW_BOT)
    )
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.using(scratch.alias).create(
        key_hash=token_hash(key), prefix=key[:PREFIX_LENGTH], bot_id=API_BOT, name="bench"
    )
    return key


def _environment(options: BenchOptions) -> dict[str, Any]:
    """The machine and the server (the configured database's: the scratch one is beside it)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            row = cursor.fetchone()
    except Exception:  # no server: the reads will say so; the run goes on
        row = None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": row[0] if row else None,
        "gunicorn_workers": options.workers,
        "gunicorn_threads": int(os.environ.get("GUNICORN_THREADS", "1")),
        "load_average_start": _load(),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _single_trades_op() -> Operation:
    return Operation(
        name="trade_single_post",
        label="POST trades/ (1 trade)",
        rows_per_call=1,
        unit="ms",
        target=Target("p95", "<", 5.0),
        max_ratio=3.0,  # issue 19: p50 at most 3x a raw INSERT and commit
        baseline_label="INSERT 1 row",
    )


def _single_trades(
    op: Operation, client: ApiClient, scratch: ScratchDatabase, options: BenchOptions, log: Log
) -> None:
    now = timezone.now()
    with scratch.connect() as raw:
        for kind, count in (("W", options.single_warmup), ("S", options.singles)):
            rows = trade_rows(kind, 0, count)
            bodies = [to_json([row], single=True) for row in rows]
            values = [stored_trade(r, bot_id=RAW_BOT, source="paper", now=now) for r in rows]
            for body, row_values in zip(bodies, values, strict=True):
                api = client.post_ok(TRADES_URL, body, expect={"created": 1})
                base = raw_insert_one(raw, row_values)
                if kind == "S":
                    op.seconds.append(api)
                    op.baseline_seconds.append(base)
    log(f"single trades: {options.singles} POSTs")


def _trade_batches_op(options: BenchOptions) -> Operation:
    size = options.trade_batch
    return Operation(
        name="trade_batch_post",
        label=f"POST trades/ ({size:,}-trade batch)",
        rows_per_call=size,
        unit="trades/s",
        target=Target("p50", ">=", 10_000),
        max_ratio=1 / 0.6,  # issue 19: at least 0.6x the raw COPY rate
        baseline_label=f"COPY {size:,} rows",
    )


def _trade_batches(
    op: Operation, client: ApiClient, scratch: ScratchDatabase, options: BenchOptions, log: Log
) -> None:
    size = options.trade_batch
    now = timezone.now()
    with scratch.connect() as raw:
        for n in range(options.warmup_batches + options.batches):
            rows = trade_rows("B", n * size, size)
            body = to_json(rows)
            values = [stored_trade(r, bot_id=RAW_BOT, source="paper", now=now) for r in rows]
            api = client.post_ok(TRADES_URL, body, expect={"created": size})
            base = raw_copy(raw, RAW_TRADE_COPY, values)
            if n >= options.warmup_batches:
                op.seconds.append(api)
                op.baseline_seconds.append(base)
    log(f"trade batches: {options.batches} x {size:,}")


def _candle_batches_op(options: BenchOptions) -> Operation:
    size = options.candle_batch
    return Operation(
        name="candle_batch_post",
        label=f"POST market-data/ ({size:,} candles)",
        rows_per_call=size,
        unit="candles/s",
        target=Target("p50", ">=", 100_000),
        max_ratio=1 / 0.75,  # issue 19: at least 0.75x the raw COPY rate
        baseline_label=f"COPY {size:,} rows",
    )


def _candle_batches(
    op: Operation, client: ApiClient, scratch: ScratchDatabase, options: BenchOptions, log: Log
) -> None:
    size = options.candle_batch
    with scratch.connect() as raw:
        for n in range(options.warmup_batches + options.batches):
            body = to_json(candle_rows("BENCH/USDT", n * size, size))
            values = [candle_values(r) for r in candle_rows("RAW/USDT", n * size, size)]
            if op.available:
                status, data, api = client.post(CANDLES_URL, body)
                if status != 200 or _inserted(data) != size:
                    op.available = False
                    op.note = f"not available: POST {CANDLES_URL} answered {status} {data[:200]!r}"
                    log(f"candle batches: {op.note}")
            base = raw_copy(raw, RAW_CANDLE_COPY, values)
            if n >= options.warmup_batches:
                if op.available:
                    op.seconds.append(api)
                op.baseline_seconds.append(base)
    if op.available:
        log(f"candle batches: {options.batches} x {size:,}")


def _predictions(read: Operation, key_prefix: str) -> Ingestion:
    """The prediction batches, then (when they ran) the cached read of what they wrote."""

    def run(
        op: Operation, client: ApiClient, scratch: ScratchDatabase, options: BenchOptions, log: Log
    ) -> None:
        target = prediction_batches(op, client, scratch, options, raw_bot=RAW_BOT, log=log)
        if read.available:
            attempt(
                read,
                lambda: prediction_reads(
                    read,
                    client,
                    scratch,
                    options,
                    target=target,
                    bot_id=API_BOT,
                    key_prefix=key_prefix,
                ),
                log,
            )

    return run


def _inserted(data: bytes) -> int | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer.get("inserted") if isinstance(answer, dict) else None
