"""Settings come from the environment; production refuses to start half-configured."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atb_site.settings import base
from atb_site.settings import replicas as replicas_settings

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a fresh process with production settings and ``env`` on top."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PG", "RAILWAY_")) and k != "DATABASE_URL"
    }
    clean["DJANGO_SETTINGS_MODULE"] = "atb_site.settings.base"
    clean["DATABASE_URL"] = os.environ["DATABASE_URL"]
    clean.update(env)
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3y-" + "Zq8#pL2v@Wn5$Rt9&Yx4*Mb7!Hc1^Jd6%Fg3" * 2,
    "DJANGO_ALLOWED_HOSTS": "atb.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://atb.example.com",
}


def test_deploy_check_passes_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_without_a_secret_key_stops_with_a_clear_message() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line, no traceback (tests/ops/test_startup_errors)
    assert line.startswith("manage.py: configuration error: DJANGO_SECRET_KEY is not set.")


def test_railway_pg_variables_build_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("PGHOST", "db.railway.internal")
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("PGUSER", "railway")
    monkeypatch.setenv("PGPASSWORD", "p@ss/word")
    monkeypatch.setenv("PGDATABASE", "trading")
    assert (
        base._database_url() == "postgres://railway:p%40ss%2Fword@db.railway.internal:6543/trading"
    )


def test_database_url_wins_over_pg_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h:1/d")
    monkeypatch.setenv("PGHOST", "elsewhere")
    assert base._database_url() == "postgres://u@h:1/d"


def test_no_database_configured_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("PGHOST", raising=False)
    with pytest.raises(Exception, match="set DATABASE_URL \\(or Railway's PGHOST"):
        base._database_url()


def test_behind_pgbouncer_no_statement_is_prepared() -> None:
    show = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    plain = manage("shell", "-c", show, DATABASE_PGBOUNCER="false", **PRODUCTION)
    pooled = manage(
        "shell",
        "-c",
        show,
        DATABASE_PGBOUNCER="true",
        DATABASE_DIRECT_URL="postgres://u@db.internal:5432/atb",
        **PRODUCTION,
    )
    assert "'prepare_threshold': 5" in plain.stdout, plain.stderr
    assert "'prepare_threshold': None" in pooled.stdout, pooled.stderr


# --- Read replicas (DATABASE_REPLICA_URL) ---------------------------------------------------------


def test_each_replica_url_is_an_alias_with_the_primarys_settings_and_its_own_server() -> None:
    primary: dict[str, Any] = {
        "ENGINE": "atb_site.db",
        "NAME": "atb",
        "USER": "atb",
        "PASSWORD": "primary-pw",
        "HOST": "primary",
        "PORT": 5432,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5, "keepalives": 1, "pool": {"max_size": 10}},
    }
    found = replicas_settings.replica_databases(
        [
            " postgres://ro:pw@replica-a:5433/atb ",
            "",
            "postgres://atb@replica-b/atb?sslmode=require",
        ],
        primary=primary,
        connect_timeout=2,
        conn_max_age=60,
    )
    assert list(found) == ["replica_1", "replica_2"]
    first, second = found["replica_1"], found["replica_2"]
    assert (first["HOST"], first["PORT"], first["USER"], first["PASSWORD"], first["NAME"]) == (
        "replica-a",
        5433,
        "ro",
        "pw",
        "atb",
    )
    assert first["OPTIONS"] == {"connect_timeout": 2, "keepalives": 1}  # no pool of its own
    assert (first["ENGINE"], first["CONN_MAX_AGE"], first["CONN_HEALTH_CHECKS"]) == (
        "atb_site.db",
        60,
        True,
    )
    assert first["TEST"] == {"MIRROR": "default"}
    assert (second["HOST"], second["PASSWORD"], second["OPTIONS"]["sslmode"]) == (
        "replica-b",
        "",
        "require",
    )
    assert primary["OPTIONS"]["pool"] == {"max_size": 10}  # the primary's own are untouched


def test_the_replica_settings_from_the_environment() -> None:
    show = (
        "from django.conf import settings; print(settings.DATABASE_REPLICAS, "
        "settings.DATABASE_REPLICA_MAX_LAG_SECONDS, settings.DATABASE_ROUTERS)"
    )
    none = manage("shell", "-c", show, **PRODUCTION)
    two = manage(
        "shell",
        "-c",
        show,
        DATABASE_REPLICA_URL="postgres://a@r1/atb,postgres://a@r2/atb",
        DATABASE_REPLICA_MAX_LAG_SECONDS="2.5",
        **PRODUCTION,
    )
    bad = manage("check", DATABASE_REPLICA_MAX_LAG_SECONDS="soon", **PRODUCTION)
    router = "['atb_site.db.replicas.ReplicaRouter']"
    # (The shell's first lines say what it imported.)
    assert none.stdout.splitlines()[-1] == f"() 5.0 {router}", none.stderr
    assert two.stdout.splitlines()[-1] == f"('replica_1', 'replica_2') 2.5 {router}", two.stderr
    assert bad.returncode == 1
    assert "DATABASE_REPLICA_MAX_LAG_SECONDS must be a number of seconds, not 'soon'" in bad.stderr


def test_pgbouncer_without_a_direct_url_stops_with_a_clear_message() -> None:
    result = manage("check", DATABASE_PGBOUNCER="true", DATABASE_DIRECT_URL="", **PRODUCTION)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "manage.py: configuration error: DATABASE_PGBOUNCER=true needs DATABASE_DIRECT_URL, the "
        "PostgreSQL server's own URL (locks that outlive a transaction, VACUUM and backups cannot "
        "go through PgBouncer)."
    ]
