import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.bench import BenchOptions, render_table, run_bench
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
        "Each beside raw SQL doing the same work in the same run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", dest="json_path", type=Path, help="Also write JSON here.")
        parser.add_argument(
            "--quick", action="store_true", help="Fewer requests: a smoke run, not figures."
        )

    def handle(self, *args: Any, json_path: Path | None, quick: bool, **options: Any) -> None:
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            report = run_bench(BenchOptions(quick=quick), log=self.stderr.write)
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write(render_table(report))
        if json_path is not None:
            json_path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
