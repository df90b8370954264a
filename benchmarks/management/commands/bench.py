import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.bench import BenchOptions, operation_names, render_table, run_bench
from benchmarks.bench.fleet import FleetOptions, production_workers, run_fleet
from benchmarks.bench.fleet_bots import Cadence
from benchmarks.bench.fleet_report import render_fleet
from benchmarks.bench.scratch import BenchError


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the scratch database is dropped and gunicorn stopped.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Measure ingestion through a real gunicorn server on a scratch database (dropped "
        "afterwards): single-trade POST latency, 1,000-trade and 10,000-candle batch rates; "
        "then the reads (selectors, refresh, rollup, trade list endpoint, admin page, "
        "dashboard) on the data set generate_dataset loaded into the configured database. "
        "Each beside raw SQL doing the same work in the same run. With --fleet N instead: N "
        "simulated bots and a dashboard client at once, latency per endpoint, errors, CPU."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", dest="json_path", type=Path, help="Also write JSON here.")
        parser.add_argument(
            "--quick", action="store_true", help="Fewer requests: a smoke run, not figures."
        )
        parser.add_argument(
            "--fleet",
            type=int,
            nargs="?",
            const=100,
            metavar="N",
            help="Instead: N simulated bots (default 100) and a dashboard client at once "
            "against gunicorn on a scratch database (docs/BENCHMARKS.md, Fleet).",
        )
        parser.add_argument(
            "--duration", type=float, default=90.0, help="Seconds the fleet runs (default 90)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            help="gunicorn workers (default: 2 for the bench; for --fleet production's "
            f"default, 2 x CPUs + 1 at most 4: {production_workers()} here).",
        )
        parser.add_argument(
            "--skip",
            type=lambda text: frozenset(n.strip() for n in text.split(",") if n.strip()),
            default=frozenset(),
            metavar="NAME,...",
            help="Operations not to measure, by their JSON name (e.g. risk_rollup_today, whose "
            "first call fills every past day; or the ingestion ones, which do not depend on the "
            "data set); reported not available.",
        )
        parser.add_argument(
            "--trade-every",
            type=float,
            default=3.0,
            help="Mean seconds between a fleet bot's trade or order updates (default 3).",
        )

    def handle(
        self,
        *args: Any,
        json_path: Path | None,
        quick: bool,
        fleet: int | None,
        duration: float,
        workers: int | None,
        trade_every: float,
        skip: frozenset[str],
        **options: Any,
    ) -> None:
        if fleet is not None and (fleet < 1 or duration <= 0 or trade_every <= 0):
            raise CommandError("--fleet, --duration and --trade-every must be positive")
        if workers is not None and workers < 1:
            raise CommandError("--workers must be at least 1")
        unknown = sorted(skip - set(operation_names()))
        if unknown:
            raise CommandError(
                f"--skip: no operation named {', '.join(unknown)} (the names: "
                f"{', '.join(operation_names())})"
            )
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            if fleet is not None:
                fleet_report = run_fleet(
                    FleetOptions(
                        bots=fleet,
                        duration=duration,
                        workers=workers or 0,
                        cadence=Cadence(activity=trade_every),
                    ),
                    log=self.stderr.write,
                )
                text, data = render_fleet(fleet_report), fleet_report.as_json()
            else:
                report = run_bench(
                    BenchOptions(quick=quick, workers=workers or 2, skip=skip),
                    log=self.stderr.write,
                )
                text, data = render_table(report), report.as_json()
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write(text)
        if json_path is not None:
            json_path.write_text(json.dumps(data, indent=2) + "\n")
