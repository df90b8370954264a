"""The service behind a real PgBouncer in transaction pooling mode (DATABASE_PGBOUNCER=true):
each kind of process's timeouts in force in every transaction, the readiness probe leaving no
setting behind on a shared server connection, the API's write and read paths through gunicorn
(staging tables and all), a Celery task under its advisory lock, and ``migrate`` waiting on its
lock on the direct connection. PgBouncer is Debian's, started here as a child process; without
it these tests skip, and fail under CI=true (``make test`` installs it)."""

import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings
from psycopg import ClientCursor

from atb_site.db.base import direct_connection_params, direct_settings_dict
from atb_site.db.pgbouncer import PgBouncer, binary
from audit.backups.pg import PgTarget
from audit.management.commands.migrate import LOCK_APPLICATION_NAME, MIGRATE_LOCK_NAME
from tests.api.test_concurrent_writes import T0, candle, trade
from tests.factories import make_bot
from tests.ops.servers import free_port, gunicorn_serving
from tests.ops.test_logging import _production_env
from trading.db import advisory_lock_key
from trading.models import MarketData, Trade
from trading.services.tokens import bot_token_create

ROOT = Path(__file__).resolve().parents[2]

if binary() is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("pgbouncer is not installed (make test installs it)", pytrace=False)
    pytest.skip("pgbouncer is not installed (make test installs it)", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)

# The web's statement timeout, short enough to see PostgreSQL enforce it.
WEB_STATEMENT_TIMEOUT = "0.5"
KEEPALIVES = (
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)
STAFF_PASSWORD = "staff-pass-" + "q7" * 8
SHOWN = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "jit")


class Pooled:
    """A PgBouncer in front of the test database's server, and the environment of a process of
    ours behind it."""

    def __init__(self, bouncer: PgBouncer, server_url: str) -> None:
        self.bouncer = bouncer
        self.server_url = server_url

    def env(self, dbname: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
        return {
            **env,
            "DJANGO_SETTINGS_MODULE": "atb_site.settings.test",
            "DATABASE_URL": self.bouncer.url(dbname),
            "DATABASE_DIRECT_URL": self.server_url,
            "DATABASE_PGBOUNCER": "true",
            "DATABASE_STATEMENT_TIMEOUT_WEB": WEB_STATEMENT_TIMEOUT,
            **extra,
        }

    def manage(self, *argv: str, env: dict[str, str] | None = None) -> Any:
        """``manage.py ARGV`` behind PgBouncer (in ``env``, by default ``self.env()``)."""
        return subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, str(ROOT / "manage.py"), *argv],
            cwd=ROOT,
            env=self.env() if env is None else env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def shell(self, script: str) -> Any:
        """Run ``script`` by ``manage.py shell`` behind PgBouncer; what it printed last, as JSON."""
        run = self.manage("shell", "-c", script)
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads(run.stdout.strip().splitlines()[-1])


def _server_url(dbname: str) -> str:
    db = direct_settings_dict()
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{dbname}"


@contextmanager
def pooled(
    tmp_path: Path, *, databases: tuple[str, ...] = (), pool_size: int = 20
) -> Iterator[Pooled]:
    server_url = _server_url(str(connection.settings_dict["NAME"]))
    env = {**os.environ, "DATABASE_STATEMENT_TIMEOUT_WEB": WEB_STATEMENT_TIMEOUT}
    bouncer = PgBouncer(
        server_url=server_url,
        directory=tmp_path / "pgbouncer",
        databases=list(databases),
        environ=env,
        pool_size=pool_size,
    )
    with bouncer:
        yield Pooled(bouncer, server_url)


def direct() -> psycopg.Connection[Any]:
    return psycopg.connect(_server_url(str(connection.settings_dict["NAME"])), autocommit=True)


# --- sessions ----------------------------------------------------------------------------------

KINDS_SCRIPT = f"""
import json
from django.db import connection, transaction
from django.db.utils import OperationalError
from atb_site.db.session import PROCESS_KINDS, set_process_kind
out = {{}}
for kind in PROCESS_KINDS:
    set_process_kind(kind)
    for _ in range(2):  # two transactions, each on whichever server connection PgBouncer gives
        with transaction.atomic(), connection.cursor() as cursor:
            shown = []
            for name in {SHOWN!r}:
                cursor.execute(f"SHOW {{name}}")
                shown.append(cursor.fetchone()[0])
        out.setdefault(kind, []).append(shown)
out["dbname"] = connection.connection.info.dbname
out["port"] = connection.connection.info.port
parameters = connection.connection.info.get_parameters()
out["keepalives"] = [parameters.get(name) for name in {KEEPALIVES!r}]
set_process_kind("web")
try:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(1)")
    out["sleep"] = "finished"
except OperationalError as exc:
    out["sleep"] = type(exc.__cause__).__name__
print(json.dumps(out))
"""


def test_every_transaction_runs_under_its_kinds_timeouts_through_pgbouncer(
    tmp_path: Path,
) -> None:
    with pooled(tmp_path) as pool:
        report = pool.shell(KINDS_SCRIPT)

    assert report == {
        "web": [["500ms", "5s", "30s", "off"]] * 2,
        "worker": [["30min", "1min", "10min", "off"]] * 2,
        "beat": [["30s", "10s", "1min", "off"]] * 2,
        "command": [["0", "0", "1h", "off"]] * 2,
        # The last kind's database on PgBouncer, reached on PgBouncer's port.
        "dbname": f"{connection.settings_dict['NAME']}__command",
        "port": pool.bouncer.port,
        "keepalives": ["1", "30", "10", "3", "30000"],  # between this process and PgBouncer
        "sleep": "QueryCanceled",  # the web's 500 ms statement timeout, enforced
    }


PROBE_SCRIPT = """
import json
from django.db import connection, transaction
from atb_site.db.session import set_process_kind
from audit.monitoring.probes import postgres_check
set_process_kind("web")
check = postgres_check()
with transaction.atomic(), connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    after = cursor.fetchone()[0]
print(json.dumps({"status": check["status"], "after": after}))
"""


def test_the_readiness_probe_leaves_no_setting_on_a_shared_server_connection(
    tmp_path: Path,
) -> None:
    # One server connection per pool: the probe's and the next request's are the same one.
    with pooled(tmp_path, pool_size=1) as pool:
        report = pool.shell(PROBE_SCRIPT)

    assert report == {"status": "ok", "after": "500ms"}  # not the probe's 2 s


def test_direct_connections_and_backups_bypass_pgbouncer() -> None:
    name = str(connection.settings_dict["NAME"])
    url = "postgres://owner:s3cret@10.1.2.3:6543/ignored?sslmode=require"
    with override_settings(DATABASE_PGBOUNCER=True, DATABASE_DIRECT_URL=url):
        target = PgTarget.from_settings()
        params = direct_connection_params()

    assert (target.host, target.port, target.user, target.password, target.dbname) == (
        "10.1.2.3",
        "6543",
        "owner",
        "s3cret",
        name,
    )
    assert target.options["sslmode"] == "require"
    assert (params["host"], params["port"], params["dbname"], params["sslmode"]) == (
        "10.1.2.3",
        6543,
        name,
        "require",
    )
    # The command kind's session settings, which PgBouncer would refuse as a startup option.
    assert params["options"].startswith(
        "-c statement_timeout=0 -c lock_timeout=0 "
        "-c idle_in_transaction_session_timeout=3600000 -c jit=off"
    )


def test_setup_railway_verify_passes_behind_pgbouncer_with_tls_required_of_the_server(
    tmp_path: Path,
) -> None:
    with pooled(tmp_path) as pool:
        env = _production_env(
            **{
                **{k: v for k, v in pool.env().items() if k.startswith("DATABASE_")},
                # Required of the server; nothing connects to it in the check (it has no TLS).
                "DATABASE_DIRECT_URL": pool.server_url + "?sslmode=require",
            }
        )
        run = pool.manage("setup_railway", "--verify", env=env)

    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    ssl = next(line for line in run.stdout.splitlines() if line.startswith("ssl "))
    assert ssl.split() == [
        "ssl",
        "ok",
        "sslmode=require",
        "TLS",
        "required",
        "(DATABASE_DIRECT_URL",
        "?sslmode=)",
    ]


# --- the API through gunicorn ------------------------------------------------------------------


def send(port: int, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def admin_trade_list(port: int) -> str:
    """The admin's trade list as the non-superuser staff user ``pgb_staff``, logged in through
    the login form with its CSRF token. (Cookies by hand: production's are Secure-only, which a
    cookie jar keeps off plain HTTP.)"""

    def request(path: str, cookies: dict[str, str], form: dict[str, str] | None = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request("GET" if form is None else "POST", path, urlencode(form or {}), headers)
        response = conn.getresponse()
        body = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            cookies[name] = value
        conn.close()
        return response.status, response.getheader("Location"), body

    cookies: dict[str, str] = {}
    login = "/admin/login/?next=/admin/trading/trade/"
    _, _, form = request(login, cookies)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert match is not None, form[:500]
    fields = {"csrfmiddlewaretoken": match[1], "username": "pgb_staff", "password": STAFF_PASSWORD}
    status, location, _ = request(login, cookies, fields)
    assert (status, location) == (302, "/admin/trading/trade/")
    status, _, page = request("/admin/trading/trade/", cookies)
    assert status == 200
    return str(page)


def test_the_api_and_the_admin_write_and_read_through_pgbouncer(tmp_path: Path) -> None:
    staff = User.objects.create_user("pgb_staff", password=STAFF_PASSWORD, is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_trade"))
    bot = make_bot("pgb_bot")
    token = bot_token_create(bot=bot).key
    port = free_port()
    # One gunicorn worker and one server connection: every request after the first reuses the
    # server connection of the one before, staging tables (ON COMMIT DROP) included.
    with pooled(tmp_path, pool_size=1) as pool:
        env = _production_env(
            **{k: v for k, v in pool.env().items() if k.startswith("DATABASE_")},
            PORT=str(port),
            WEB_CONCURRENCY="1",
            # Production's, but for static files read from the source (no collectstatic here).
            DJANGO_SETTINGS_MODULE="atb_site.settings.test",
        )
        with (
            (tmp_path / "gunicorn.log").open("w") as log,
            gunicorn_serving(env=env, port=port, output=log),
        ):
            answers = [
                send(port, token, "POST", "/api/v1/trades/", trade(0)),
                # Batches of 100 or more take the COPY fast path through a staging table.
                send(port, token, "POST", "/api/v1/trades/", [trade(n) for n in range(1, 151)]),
                send(port, token, "POST", "/api/v1/trades/", [trade(n) for n in range(151, 301)]),
                send(port, token, "POST", "/api/v1/market-data/", [candle(n) for n in range(120)]),
                send(port, token, "POST", "/api/v1/market-data/", [candle(n) for n in range(240)]),
            ]
            status, listed = send(port, token, "GET", "/api/v1/trades/?page_size=5")
            query = urlencode(
                {
                    "symbol": "BTC/USDT",
                    "exchange": "binance",
                    "timeframe": "1m",
                    "start": T0.isoformat(),
                    "end": (T0 + timedelta(minutes=9)).isoformat(),
                }
            )
            candles_status, candles = send(port, token, "GET", f"/api/v1/market-data/?{query}")
            ready = send(port, token, "GET", "/health/ready")[0]
            admin_page = admin_trade_list(port)

    assert answers == [
        (200, {"created": 1, "updated": 0, "unchanged": 0}),
        (200, {"created": 150, "updated": 0, "unchanged": 0}),
        (200, {"created": 150, "updated": 0, "unchanged": 0}),
        (200, {"inserted": 120, "duplicates": 0}),
        (200, {"inserted": 120, "duplicates": 120}),
    ]
    assert Trade.objects.filter(bot=bot).count() == 301
    assert MarketData.objects.count() == 240
    assert status == 200
    assert [row["trade_id"] for row in listed["results"]] == [
        f"R-{n:04d}" for n in range(300, 295, -1)
    ]
    assert candles_status == 200
    # [start, end): the first nine minutes, oldest first.
    rows = candles["results"]
    assert [c["ts"] for c in rows] == [f"2026-01-05T12:0{n}:00Z" for n in range(9)]
    assert rows[0]["close"] == "105.0000000000"
    assert ready == 200
    # The admin too: a staff user's login (CSRF checked) and the trade list, through PgBouncer.
    assert admin_page.count("R-0") == 50  # the first page of 301 trades, newest first
    assert "R-0300" in admin_page
    assert "301 trades" in admin_page


# --- a task under its lock, and migrate --------------------------------------------------------

TASK_SCRIPT = """
import json
from analytics.models import PortfolioSnapshot
from analytics.tasks import portfolio_snapshot
from atb_site.db.session import set_process_kind
set_process_kind("worker")
result = portfolio_snapshot.apply()
snapshots = PortfolioSnapshot.objects.count()
print(json.dumps({"state": result.state, "ran": result.result is not None, "snapshots": snapshots}))
"""


def test_a_task_takes_its_advisory_lock_through_pgbouncer_and_lets_it_go(tmp_path: Path) -> None:
    key = advisory_lock_key("analytics.portfolio_snapshot")
    with pooled(tmp_path) as pool:
        with direct() as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [key])
            # Held elsewhere: the task comes back (eager: at once) until it gives up, writing
            # nothing;
            assert pool.shell(TASK_SCRIPT) == {"state": "SUCCESS", "ran": False, "snapshots": 0}
            holder.execute("SELECT pg_advisory_unlock(%s)", [key])
        # free, it runs; its lock went with its transaction, not with a pooled server session.
        assert pool.shell(TASK_SCRIPT) == {"state": "SUCCESS", "ran": True, "snapshots": 1}
        with direct() as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone() == (True,)


def _waiting_migrates(conn: psycopg.Connection[Any], dbname: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [dbname, LOCK_APPLICATION_NAME],
    ).fetchone()
    return int(row[0]) if row else 0


def _console(bouncer: PgBouncer, command: str) -> list[dict[str, Any]]:
    """PgBouncer's own SHOW ``command`` (its console speaks the simple query protocol only)."""
    with psycopg.connect(
        bouncer.url("pgbouncer"), autocommit=True, cursor_factory=ClientCursor
    ) as console:
        cursor = console.execute(f"SHOW {command}")
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("direct_option", [False, True], ids=["through", "direct"])
def test_migrate_behind_pgbouncer_waits_on_its_lock_on_the_server(
    tmp_path: Path, direct_option: bool
) -> None:
    """Through PgBouncer (the command kind's pool), or with --direct (the release step) on
    DATABASE_DIRECT_URL: either way its lock is on the server itself."""
    scratch = f"{connection.settings_dict['NAME']}_pgb_{uuid.uuid4().hex[:8]}"
    key = advisory_lock_key(MIGRATE_LOCK_NAME)
    with direct() as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        with pooled(tmp_path, databases=(scratch,)) as pool:
            scratch_url = pool.server_url.rsplit("/", 1)[0] + f"/{scratch}"
            with psycopg.connect(scratch_url, autocommit=True) as holder:
                holder.execute("SELECT pg_advisory_lock(%s)", [key])
                migrate = subprocess.Popen(  # noqa: S603 - our own manage.py
                    [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"]
                    + ["--direct"] * direct_option,
                    cwd=ROOT,
                    env=pool.env(scratch),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                deadline = time.monotonic() + 60
                # Its lock connection waits on the server itself, not through PgBouncer;
                while _waiting_migrates(holder, scratch) < 1:
                    assert migrate.poll() is None, migrate.communicate()
                    assert time.monotonic() < deadline, "migrate never waited for the lock"
                    time.sleep(0.1)
                # and PgBouncer has no client of that name.
                clients = _console(pool.bouncer, "CLIENTS")
                assert LOCK_APPLICATION_NAME not in {c["application_name"] for c in clients}
                holder.execute("SELECT pg_advisory_unlock_all()")
                out, err = migrate.communicate(timeout=180)
            assert migrate.returncode == 0, err[-3000:]
            assert "Waiting for another migrate on this database to finish..." in out
            # Its migrations ran through the command kind's pool, or not through PgBouncer at all.
            queries = sum(
                row["total_query_count"]
                for row in _console(pool.bouncer, "STATS")
                if row["database"] == f"{scratch}__command"
            )
            assert (queries == 0) if direct_option else (queries > 100), queries
            with psycopg.connect(scratch_url, autocommit=True) as other:  # and let it go
                assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone() == (True,)
            with psycopg.connect(scratch_url) as check:
                applied = check.execute("SELECT count(*) FROM django_migrations").fetchone()
        assert applied == (len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations),)
    finally:
        with direct() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
