"""Probes and metrics (API.md "Probes and operations").

- store: the counters of every process, buffered in memory and added up in Redis;
- middleware: HTTP request counts and latencies (and 503 when the database cannot answer);
- database: the execute wrapper timing every SQL statement;
- tasks: Celery task outcomes;
- probes: readiness checks; views: /health/live, /health/ready, /metrics;
- selectors: what PostgreSQL says about itself;
- prometheus: the /metrics text; maintenance: database optimize (VACUUM, view refresh).

``install()`` (from AuditConfig.ready) hooks the database wrapper and the Celery signals into
every process: web, worker, beat and management commands.
"""


def install() -> None:
    from audit.monitoring import database, tasks

    database.install()
    tasks.install()
