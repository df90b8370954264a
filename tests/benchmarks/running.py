"""``manage.py bench`` in a child process, as a deployment runs it."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from benchmarks.bench.scratch import PgServer

ROOT = Path(settings.BASE_DIR)


def run_bench(args: list[str], *, timeout: int) -> subprocess.CompletedProcess[str]:
    """Production settings on the configured database, and no collectstatic beforehand (the
    admin page once crashed the whole run there: a missing manifest entry)."""
    server = PgServer.from_settings()
    return subprocess.run(  # noqa: S603 - our interpreter and manage.py
        [sys.executable, "manage.py", "bench", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "atb_site.settings.base",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-test-" + "x" * 50,
            "DATABASE_URL": server.url(server.configured_name),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
