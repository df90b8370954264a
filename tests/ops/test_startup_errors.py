"""A production start-up error is one line on stderr and a non-zero exit, never a traceback:
the real programs (manage.py, gunicorn, a Celery worker and beat) run in a subprocess with
production settings and one required variable missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
SECRET = "k3y-" + "Zq8#pL2v@Wn5$Rt9&Yx4*Mb7!Hc1^Jd6%Fg3" * 2

PROGRAMS = {
    "manage.py": [sys.executable, "manage.py", "check"],
    "gunicorn": [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "atb_site.wsgi"],
    "celery worker": [str(BIN / "celery"), "-A", "atb_site", "worker", "--pool", "solo"],
    "celery beat": [str(BIN / "celery"), "-A", "atb_site", "beat", "--pidfile="],
}
MISSING = {
    "DJANGO_SECRET_KEY": "DJANGO_SECRET_KEY is not set. Production (DJANGO_DEBUG unset or "
    "false) refuses to start without it.",
    "DATABASE_URL": "No database configured: set DATABASE_URL (or Railway's PGHOST, PGPORT, "
    "PGUSER, PGPASSWORD, PGDATABASE).",
}


def production_env(without: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PG", "RAILWAY_", "CELERY_")) and k != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="atb_site.settings.base",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=SECRET,
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:9/none"),
    )
    del env[without]
    return env


@pytest.mark.parametrize("variable", sorted(MISSING))
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_a_missing_variable_is_one_line_and_exit_1(program: str, variable: str) -> None:
    result = subprocess.run(  # noqa: S603 - our own programs with fixed arguments
        PROGRAMS[program],
        env=production_env(variable),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{program.split()[0]}: configuration error: {MISSING[variable]}")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
