"""``bench --fleet N``: N simulated bots and a dashboard client at once against a real gunicorn.

The run makes a scratch database on the configured server (as the ingestion bench does:
``<name>_bench_<pid>``, migrated, dropped at the end), N bots with a token each and a staff
session, and serves it with gunicorn under production settings (static files from the source
folders, as the read bench does: ``benchmarks.server_settings``). What the bots send and the
dashboard reads: fleet_bots.py. What is watched besides the answers: fleet_probe.py.
"""

import asyncio
import os
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from benchmarks.bench.fleet_bots import MARKETS, Cadence, DashboardClient, FleetBot, SimulatedBot
from benchmarks.bench.fleet_client import Pool, Recorder
from benchmarks.bench.fleet_probe import CpuMeter, LoopLag, WaitSampler, children, postmaster_pid
from benchmarks.bench.fleet_report import WINDOW_SECONDS, FleetReport
from benchmarks.bench.pages import SERVER_SETTINGS
from benchmarks.bench.scratch import (
    ScratchDatabase,
    database_exists,
    gunicorn_process,
    scratch_database,
    server_env,
)
from benchmarks.bench.workload import paper_bot
from trading.models import ApiToken, Bot
from trading.services.tokens import PREFIX_LENGTH, TOKEN_PREFIX, token_hash

Log = Callable[[str], None]
THROTTLE_RATE = "1000000000/s"  # as the ingestion bench: never throttled, still counted
MAX_CONNECTIONS = 256


def production_workers() -> int:
    """gunicorn.conf.py's default when WEB_CONCURRENCY is unset: 2 x CPUs + 1, at most 4."""
    return min(2 * len(os.sched_getaffinity(0)) + 1, 4)


@dataclass(frozen=True)
class FleetOptions:
    bots: int = 100
    duration: float = 90.0
    workers: int = 0  # 0: production's default (production_workers)
    dashboards: int = 1
    dashboard_every: float = 5.0
    cadence: Cadence = field(default_factory=Cadence)
    seed: int = 19

    @property
    def gunicorn_workers(self) -> int:
        return self.workers or production_workers()

    @property
    def connections(self) -> int:
        return min(MAX_CONNECTIONS, self.bots + 6 * self.dashboards)


def run_fleet(options: FleetOptions, *, log: Log) -> FleetReport:
    env = {
        **server_env(throttle_rate=THROTTLE_RATE),
        "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the staff session made here verifies there
    }
    with (
        tempfile.TemporaryDirectory(prefix="atb-bench-fleet-") as tmp,
        scratch_database(env=env, log=log) as db,
    ):
        bots = _bots(db, "fleet", options.bots)
        warm_bots = _bots(db, "warm", 2 * options.gunicorn_workers)
        cookie = _staff_cookie(db)
        log(f"fleet: {len(bots)} bots with a token each, and a staff session")
        with (
            db.connect() as probe,
            gunicorn_process(
                env={**env, "DATABASE_URL": db.url},
                workers=options.gunicorn_workers,
                log_path=Path(tmp) / "gunicorn.log",
                log=log,
            ) as (port, gunicorn_pid),
        ):
            version = probe.execute("SELECT version()").fetchone()
            meter = CpuMeter({"postgresql": postmaster_pid(probe), "gunicorn": gunicorn_pid})
            workers_seen = len(children(gunicorn_pid))
            with WaitSampler(probe, db.name, meter) as waits:
                meter.on_begin.append(waits.restart_backends)
                recorder, lag, pool = asyncio.run(
                    _drive(options, bots, warm_bots, cookie, port, meter, log)
                )
            cpu = meter.end()
            _add_own_backends(
                cpu, waits.backends_cpu_seconds, local=bool(meter.trees["postgresql"])
            )
            log_tail = (Path(tmp) / "gunicorn.log").read_text(errors="replace")[-2000:]
    return FleetReport(
        database_dropped=not database_exists(db.server, db.name),
        options=options,
        database=db.name,
        server_version=str(version[0]) if version else "",
        endpoints=recorder.endpoints,
        timeline=recorder.timeline,
        wall=cpu["wall_seconds"],
        cpu=cpu,
        cpu_windows=meter.windows(WINDOW_SECONDS),
        waits=waits.as_json(),
        loop_lag=lag.lags,
        connections_opened=pool.opened,
        workers_seen=workers_seen,
        gunicorn_log_tail=log_tail if recorder_errors(recorder) else "",
    )


def _add_own_backends(cpu: dict[str, Any], seconds: float, *, local: bool) -> None:
    """The run's own backends' CPU, and their share of the run's: on a server shared with
    other databases, the part of the server's CPU that is the run's. None for a server on
    another machine (no /proc of its processes here)."""
    others = (cpu["gunicorn"]["cpu_seconds"] or 0) + cpu["client"]["cpu_seconds"]
    cpu["postgresql_run_backends"] = {
        "cpu_seconds": seconds if local else None,
        "cores": seconds / cpu["wall_seconds"] if local else None,
    }
    cpu["database_share_run_backends"] = seconds / (seconds + others) if local else None


def recorder_errors(recorder: Recorder) -> int:
    return sum(len(e.errors) for e in recorder.endpoints.values())


async def _drive(
    options: FleetOptions,
    bots: list[FleetBot],
    warm_bots: list[FleetBot],
    cookie: str,
    port: int,
    meter: CpuMeter,
    log: Log,
) -> tuple[Recorder, LoopLag, Pool]:
    pool = Pool(port, options.connections)
    recorder = Recorder(pool)
    rng = random.Random(options.seed)  # noqa: S311 - a load's jitter, not security
    # Untimed warm-up: every worker serves each kind of request (it connects to PostgreSQL and
    # Redis, fills its caches) before the clock starts; bots of their own, not the fleet's.
    recorder.stop()
    await _warm_up(recorder, cookie, warm_bots, options.gunicorn_workers, rng)
    recorder.start()
    log(
        f"fleet: {len(bots)} bots and {options.dashboards} dashboard client(s) for "
        f"{options.duration:g} s, {options.gunicorn_workers} gunicorn workers"
    )
    meter.begin()
    until = time.perf_counter() + options.duration
    lag = LoopLag()
    ids = [bot.bot_id for bot in bots]
    tasks = [SimulatedBot(bot, recorder, _child(rng)).run(options.cadence, until) for bot in bots]
    tasks += [
        DashboardClient(recorder, cookie, ids[i :: options.dashboards] or ids).run(
            options.dashboard_every, _child(rng), until
        )
        for i in range(options.dashboards)
    ]
    await asyncio.gather(lag.run(until), *tasks)
    pool.close()
    return recorder, lag, pool


async def _warm_up(
    recorder: Recorder, cookie: str, bots: list[FleetBot], workers: int, rng: random.Random
) -> None:
    for _ in range(2):
        warm = [SimulatedBot(bot, recorder, _child(rng)) for bot in bots]
        for step in range(len(warm[0].steps)):
            await asyncio.gather(*(bot.steps[step](time.perf_counter()) for bot in warm))
        await asyncio.gather(
            *(bot.heartbeat(time.perf_counter()) for bot in warm),
            *(bot.balance(time.perf_counter()) for bot in warm),
            *(bot.candle(time.perf_counter()) for bot in warm),
            *(
                DashboardClient(recorder, cookie, [bots[0].bot_id]).reload(time.perf_counter())
                for _ in range(workers)
            ),
        )


def _child(rng: random.Random) -> random.Random:
    return random.Random(rng.random())  # noqa: S311 - a load's jitter, not security


def _bots(db: ScratchDatabase, prefix: str, count: int) -> list[FleetBot]:
    """``count`` bots with a token each in the scratch database, on the markets in turn."""
    ids = [f"{prefix}-{n:04d}" for n in range(count)]
    Bot.objects.using(db.alias).bulk_create(
        paper_bot(bot_id, name=f"Fleet bot {bot_id}", strategy_type="fleet") for bot_id in ids
    )
    keys = [TOKEN_PREFIX + secrets.token_urlsafe(32) for _ in ids]
    ApiToken.objects.using(db.alias).bulk_create(
        ApiToken(key_hash=token_hash(key), prefix=key[:PREFIX_LENGTH], bot_id=bot_id, name="fleet")
        for key, bot_id in zip(keys, ids, strict=True)
    )
    return [
        FleetBot(bot_id=bot_id, token=key, market=MARKETS[n % len(MARKETS)])
        for n, (bot_id, key) in enumerate(zip(ids, keys, strict=True))
    ]


def _staff_cookie(db: ScratchDatabase) -> str:
    """A superuser's session in the scratch database, as the Cookie header's value."""
    user = User.objects.db_manager(db.alias).create_superuser(
        username="fleet-staff", email="", password=None
    )
    data = {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    session_key = secrets.token_hex(16)
    Session.objects.using(db.alias).create(
        session_key=session_key,
        session_data=SessionStore().encode(data),
        expire_date=timezone.now() + timedelta(days=1),
    )
    return f"{settings.SESSION_COOKIE_NAME}={session_key}"
