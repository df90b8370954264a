"""``python manage.py bench``: the ingestion hot path measured through a real gunicorn server.

Nothing touches the configured database: the run creates ``<name>_bench_<pid>`` on the same
PostgreSQL server, migrates it, serves it with gunicorn and drops it at the end (also on an
error or Ctrl-C). Each API figure is set beside raw SQL doing the same writes in the same run
(a single-row INSERT, COPY of the same rows), so the ratio says what the API layer costs.
"""

from trading.bench.report import BenchReport, render_table
from trading.bench.runner import BenchOptions, run_bench

__all__ = ["BenchOptions", "BenchReport", "render_table", "run_bench"]
