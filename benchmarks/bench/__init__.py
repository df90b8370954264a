"""``python manage.py bench``: ingestion and reads measured, each beside raw SQL doing the same.

Ingestion never touches the configured database: the run creates ``<name>_bench_<pid>`` on the
same PostgreSQL server, migrates it, serves it with gunicorn and drops it at the end (also on an
error or Ctrl-C); each API figure is set beside raw SQL doing the same writes (a single-row
INSERT, COPY of the same rows). The reads run against the data set ``generate_dataset`` loaded
into the configured database, each beside the same SQL replayed through psycopg, so the ratio
says what our layers cost over the database's own work.
"""

from benchmarks.bench.report import BenchReport, render_table
from benchmarks.bench.runner import BenchOptions, operation_names, run_bench

__all__ = ["BenchOptions", "BenchReport", "operation_names", "render_table", "run_bench"]
