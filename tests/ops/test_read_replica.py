"""Staff analytics reads from a real streaming replica of the test server (issue 15, item 2).

The replica is ``pg_basebackup -R`` of the server the tests use, started on a port of its own
(tests/ops/replica_support.py), and set up as DATABASE_REPLICA_URL's first replica
(``replica_1``). Which server served a read is seen on the connection that ran it: every
statement is recorded with its alias and backend PID, and that connection is then asked
``pg_is_in_recovery()``. Replay is paused with ``pg_wal_replay_pause()`` and the replica killed
by its postmaster's PID, for real. Without a replica here (no replication rights, no server
binaries of the server's major version) the module is skipped with the reason, except under
``CI=true``, where it fails.
"""

import copy
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Permission, User
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from atb_site.db import replicas
from tests.factories import (
    make_balance,
    make_bot,
    make_candle,
    make_closed_trade,
    make_order,
    make_position,
    make_signal,
)
from tests.ops.replica_support import (
    Replica,
    ReplicaUnavailable,
    streaming_replica,
    wait_until_replayed,
)
from trading.models import Bot
from trading.services.tokens import bot_token_create, staff_token_create

ALIAS = "replica_1"
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, ALIAS])
MAX_LAG = 2.0
# Statements about our apps' tables (ORM: "trading"."trades"; raw SQL: trading.trades), but for
# the API token's look-up, which authenticates the caller before anything is decided.
OUR_TABLES = re.compile(r'\b(trading|analytics|audit|config)"?\."?[a-z_]+')
TOKEN_LOOKUP = "api_tokens"
WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _primary_params() -> dict[str, Any]:
    config = connections[DEFAULT_DB_ALIAS].settings_dict
    return {
        "host": config["HOST"] or "127.0.0.1",
        "port": int(config["PORT"] or 5432),
        "user": config["USER"] or "postgres",
        "dbname": config["NAME"],
    }


@pytest.fixture(scope="module", autouse=True)
def replica_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[Replica]:
    """The replica, and ``replica_1`` naming it in this process's connections (before the
    tests' database fixtures, which refuse an alias they were not told of)."""
    with ExitStack() as stack:
        with django_db_blocker.unblock():
            params = _primary_params()
        try:
            replica = stack.enter_context(streaming_replica(params))
        except ReplicaUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true and no streaming replica of the test server: {exc}")
            pytest.skip(f"no streaming replica of the test server: {exc}")
        config = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
        config.update(HOST="127.0.0.1", PORT=str(replica.port), TEST={"MIRROR": "default"})
        config["OPTIONS"]["connect_timeout"] = 2
        connections.settings[ALIAS] = config
        try:
            yield replica
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]


@pytest.fixture
def replica(replica_server: Replica, settings: Any) -> Iterator[Replica]:
    """The replica as this process's only one, with a lag limit of MAX_LAG seconds."""
    if replica_server.postmaster_pid() is None:  # a test before this one killed it
        replica_server.start()
    settings.DATABASE_REPLICAS = (ALIAS,)
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = MAX_LAG
    replicas.forget_states()
    try:
        yield replica_server
    finally:
        if replica_server.postmaster_pid() is not None:
            with replica_server.connect(_primary_params()["dbname"]) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        connections[ALIAS].close()
        replicas.forget_states()


@dataclass
class Served:
    """Every statement this thread ran, with the alias and backend PID of its connection."""

    statements: list[tuple[str, int, str]] = field(default_factory=list)

    def ours(self) -> list[tuple[str, int, str]]:
        """The reads of our tables."""
        return [
            s
            for s in self.statements
            if OUR_TABLES.search(s[2]) and not WRITES.search(s[2]) and TOKEN_LOOKUP not in s[2]
        ]

    def writes(self) -> list[tuple[str, int, str]]:
        return [s for s in self.statements if OUR_TABLES.search(s[2]) and WRITES.search(s[2])]

    def aliases(self) -> set[str]:
        return {alias for alias, _, _ in self.ours()}


@contextmanager
def served() -> Iterator[Served]:
    record = Served()

    def recorder(alias: str) -> Callable[..., Any]:
        def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
            pid = connections[alias].connection.info.backend_pid
            record.statements.append((alias, pid, sql))
            return execute(sql, *args)

        return wrapper

    with ExitStack() as stack:
        for alias in (DEFAULT_DB_ALIAS, ALIAS):
            stack.enter_context(connections[alias].execute_wrapper(recorder(alias)))
        yield record


def in_recovery(alias: str, pid: int) -> bool:
    """``pg_is_in_recovery()`` on the connection (by backend PID) that served a read."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), pg_is_in_recovery()")
        backend, recovering = cursor.fetchone()
    assert backend == pid, "the read was served by another connection than the one asked"
    return bool(recovering)


@dataclass
class Fleet:
    bot: Bot
    staff_api: APIClient
    staff_session: Client
    bot_api: APIClient


@pytest.fixture
def fleet(db: None) -> Fleet:
    bot = make_bot("replica_001", name="Replica")
    now = timezone.now()
    for day in range(1, 6):
        make_closed_trade(
            bot,
            trade_id=f"t{day}",
            pnl_usd=Decimal(f"{day}0.50000000"),
            entry_time=now - timedelta(days=day, hours=2),
            exit_time=now - timedelta(days=day),
        )
    make_position(bot)
    make_order(bot)
    make_signal(bot)
    make_balance(bot)
    make_candle(ts=now.replace(second=0, microsecond=0) - timedelta(minutes=5))
    staff = User.objects.create_user("analyst", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__startswith="view_",
            content_type__app_label__in=["trading", "analytics", "audit"],
        )
    )
    session = Client(enforce_csrf_checks=True)
    session.force_login(staff)
    staff_api = APIClient()
    staff_api.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token_create(user=staff).key}")
    bot_api = APIClient()
    bot_api.credentials(HTTP_AUTHORIZATION=f"Bearer {bot_token_create(bot=bot).key}")
    return Fleet(bot=bot, staff_api=staff_api, staff_session=session, bot_api=bot_api)


def staff_reads(bot_id: str) -> list[str]:
    """Every staff read the replica serves: analytics, portfolio, list endpoints, dashboard
    pages, the admin's read-only lists."""
    api = "/api/v1/"
    return [
        f"{api}portfolio/summary/",
        f"{api}portfolio/performance/?period=day",
        f"{api}portfolio/snapshots/",
        f"{api}bots/{bot_id}/summary/",
        f"{api}bots/{bot_id}/equity/",
        f"{api}bots/{bot_id}/performance/?period=day",
        f"{api}bots/{bot_id}/breakdown/?by=exit_reason",
        f"{api}trades/",
        f"{api}orders/",
        f"{api}positions/",
        f"{api}signals/",
        f"{api}balances/",
        f"{api}bots/",
        f"{api}risk-events/",
        f"{api}system-events/",
        f"{api}data-quality/",
        f"{api}market-data/?symbol=BTC/USDT&exchange=binance&timeframe=1m",
        "/dashboard/",
        f"/dashboard/bots/{bot_id}/",
        "/admin/trading/trade/",
        "/admin/trading/order/",
        "/admin/trading/position/",
        "/admin/trading/marketdata/",
        "/admin/trading/signal/",
        "/admin/trading/accountbalance/",
        "/admin/trading/riskmetric/",
        "/admin/analytics/portfoliosnapshot/",
        "/admin/analytics/botperformancesummary/",
        "/admin/audit/systemevent/",
        "/admin/audit/riskevent/",
        "/admin/audit/changelog/",
    ]


def get(fleet: Fleet, url: str) -> Any:
    client = fleet.staff_session if not url.startswith("/api/") else fleet.staff_api
    return client.get(url)


def trade_ids(response: Any) -> set[str]:
    return {row["trade_id"] for row in response.json()["results"]}


def test_staff_reads_land_on_the_replica(replica: Replica, fleet: Fleet) -> None:
    primary = connections[DEFAULT_DB_ALIAS]
    with psycopg.connect(**_primary_params(), autocommit=True) as conn:
        wait_until_replayed(conn, replica, primary.settings_dict["NAME"])
    for url in staff_reads(fleet.bot.bot_id):
        with served() as record:
            response = get(fleet, url)
        assert response.status_code == 200, (url, response.content[:300])
        if url == "/dashboard/":  # the portfolio page reads only the markets' price places
            assert [sql.lstrip()[:26] for _, _, sql in record.ours()] == [
                "WITH RECURSIVE series AS ("
            ]
        assert record.aliases() == {ALIAS}, (url, record.ours())
        pid = next(pid for alias, pid, _ in record.ours() if alias == ALIAS)
        assert in_recovery(ALIAS, pid), url
        # A write made during a read (the summary's checkpoint, built on demand) goes to the
        # primary.
        assert {alias for alias, _, _ in record.writes()} <= {DEFAULT_DB_ALIAS}, url
        if url.endswith("/summary/") and "bots/" in url:
            assert [alias for alias, _, _ in record.writes()] == [DEFAULT_DB_ALIAS]
    # The rows came from the replica: the same answer the primary gives.
    assert trade_ids(fleet.staff_api.get("/api/v1/trades/")) == {f"t{d}" for d in range(1, 6)}


def test_a_bots_token_never_touches_the_replica(replica: Replica, fleet: Fleet) -> None:
    bot_id = fleet.bot.bot_id
    for url in [
        "/api/v1/trades/",
        "/api/v1/positions/",
        f"/api/v1/bots/{bot_id}/summary/",
        f"/api/v1/bots/{bot_id}/equity/",
        "/api/v1/market-data/?symbol=BTC/USDT&exchange=binance&timeframe=1m",
    ]:
        with served() as record:
            response = fleet.bot_api.get(url)
        assert response.status_code == 200, url
        assert record.aliases() == {DEFAULT_DB_ALIAS}, (url, record.ours())
        assert not in_recovery(DEFAULT_DB_ALIAS, record.ours()[-1][1])


def _pause(replica: Replica) -> None:
    with replica.connect(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")


def test_a_lagging_replica_is_skipped_and_the_new_rows_come_from_the_primary(
    replica: Replica, fleet: Fleet
) -> None:
    url = "/api/v1/trades/"
    dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    with psycopg.connect(**_primary_params(), autocommit=True) as conn:
        wait_until_replayed(conn, replica, dbname)
    assert trade_ids(fleet.staff_api.get(url)) == {f"t{d}" for d in range(1, 6)}
    _pause(replica)
    paused_at = time.monotonic()
    make_closed_trade(fleet.bot, trade_id="late", pnl_usd=Decimal("1.00000000"))

    # The bot reads its own write at once, from the primary, replay paused or not.
    with served() as record:
        assert "late" in trade_ids(fleet.bot_api.get(url))
    assert record.aliases() == {DEFAULT_DB_ALIAS}

    # Within the limit, staff still read the replica, which does not have the trade yet.
    with served() as record:
        assert "late" not in trade_ids(fleet.staff_api.get(url))
    assert record.aliases() == {ALIAS}
    assert time.monotonic() - paused_at < MAX_LAG

    # Past it, staff reads move to the primary and find the new trade; no error on the way.
    while True:
        with served() as record:
            response = fleet.staff_api.get(url)
        assert response.status_code == 200
        if record.aliases() == {DEFAULT_DB_ALIAS}:
            break
        assert "late" not in trade_ids(response)
        assert time.monotonic() - paused_at < MAX_LAG + replicas.CHECK_SECONDS + 2
        time.sleep(0.2)
    assert time.monotonic() - paused_at >= MAX_LAG - 0.5  # moved for the lag, not before
    assert "late" in trade_ids(response)
    state = replicas.replica_state(ALIAS)
    assert state.lag_seconds is not None and state.lag_seconds > MAX_LAG and not state.usable

    ready = Client().get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert "replicas" in body["warnings"]
    check = body["checks"]["replicas"]["replicas"][ALIAS]
    assert check["status"] == "warning" and check["lag_seconds"] > MAX_LAG
    assert check["max_lag_seconds"] == MAX_LAG
    assert check["reason"] == "lagging past the limit: reads go to the primary"
    metrics = fleet.staff_session.get("/metrics").content.decode()
    assert f'atb_database_replica_up{{replica="{ALIAS}"}} 0' in metrics
    lag = re.search(rf'atb_database_replica_lag_seconds{{replica="{ALIAS}"}} (\S+)', metrics)
    assert lag is not None and float(lag.group(1)) > MAX_LAG

    # Replay resumed, the replica catches up and serves again, with the new trade.
    with replica.connect(dbname) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
    with psycopg.connect(**_primary_params(), autocommit=True) as conn:
        wait_until_replayed(conn, replica, dbname)
    time.sleep(replicas.CHECK_SECONDS)
    with served() as record:
        assert "late" in trade_ids(fleet.staff_api.get(url))
    assert record.aliases() == {ALIAS}
    body = Client().get("/health/ready").json()
    assert "replicas" not in body["warnings"]
    assert body["checks"]["replicas"]["replicas"][ALIAS]["lag_seconds"] == 0.0


def test_an_idle_primary_is_not_lag(replica: Replica, fleet: Fleet) -> None:
    """With nothing written, the age of the last replayed transaction grows; the replica is not
    behind for that (the naive rule would have skipped it). Autovacuum may commit now and then
    on the shared server: wait for a quiet stretch longer than the limit."""
    dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    age_sql = "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
    deadline = time.monotonic() + 30
    with replica.connect(dbname) as conn:
        while True:
            assert time.monotonic() < deadline, "the primary was never idle for MAX_LAG s"
            age_before = float(conn.execute(age_sql).fetchone()[0])  # type: ignore[index]
            if age_before > MAX_LAG:
                replicas.forget_states()
                state = replicas.replica_state(ALIAS)
                age_after = float(conn.execute(age_sql).fetchone()[0])  # type: ignore[index]
                if age_after > age_before:  # no transaction replayed meanwhile
                    break
            time.sleep(0.2)
    assert (state.lag_seconds, state.error, state.usable) == (0.0, None, True)
    with served() as record:
        assert fleet.staff_api.get("/api/v1/portfolio/summary/").status_code == 200
    assert record.aliases() == {ALIAS}


def test_outside_a_staff_read_the_router_leaves_every_choice_to_django(settings: Any) -> None:
    """The primary, or the database an object came from (the bench's scratch databases); but an
    object read from a replica is written to the primary, and nothing migrates a replica."""
    settings.DATABASE_REPLICAS = (ALIAS,)
    router = replicas.ReplicaRouter()
    from_replica, from_scratch = Bot(bot_id="a"), Bot(bot_id="b")
    from_replica._state.db, from_scratch._state.db = ALIAS, "bench_scratch"
    assert router.db_for_read(Bot, instance=from_scratch) is None
    with replicas.staff_reads(wanted=False):  # a bot's request: the scope stays shut
        assert router.db_for_read(Bot) is None
    assert router.db_for_write(Bot, instance=from_replica) == DEFAULT_DB_ALIAS
    assert router.db_for_write(Bot, instance=from_scratch) is None
    assert router.allow_migrate(ALIAS, "trading") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "trading") is None


@pytest.mark.parametrize(
    ("replayed", "now", "replay_age", "lag"),
    [
        # Replayed the primary's position: no lag, however old its last transaction.
        (220, 12.0, 3600.0, 0.0),
        # Behind: since the latest check whose position it holds (150 at 11.0).
        (180, 12.5, 3600.0, 1.5),
        # ... unless its last replayed transaction is younger than that.
        (180, 12.5, 0.25, 0.25),
        # Behind every check this process made, and no transaction replayed: unknown.
        (50, 12.5, None, None),
        # Nothing replayed at all: unknown.
        (None, 12.5, 1.0, None),
    ],
)
def test_the_lag_rule(
    replayed: int | None, now: float, replay_age: float | None, lag: float | None
) -> None:
    positions = [(10.0, 100), (11.0, 150), (12.0, 220)]
    found = replicas.lag_seconds(
        replayed=replayed, primary=220, now=now, positions=positions, replay_age=replay_age
    )
    assert found == lag


def test_a_replica_that_dies_during_a_read_is_left_for_the_primary(
    replica: Replica, fleet: Fleet
) -> None:
    """Killed between the check that chose it and the read's statement: the read runs again on
    the primary, 200."""
    dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    with psycopg.connect(**_primary_params(), autocommit=True) as conn:
        wait_until_replayed(conn, replica, dbname)
    killed: list[int] = []

    def kill_first(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if OUR_TABLES.search(sql) and not killed:
            killed.append(replica.postmaster_pid() or 0)
            replica.kill()
        return execute(sql, *args)

    with connections[ALIAS].execute_wrapper(kill_first), served() as record:
        response = fleet.staff_api.get("/api/v1/portfolio/summary/")
    assert killed and response.status_code == 200
    assert DEFAULT_DB_ALIAS in record.aliases()
    assert replicas.replica_state(ALIAS).error == "failed during a read"


def test_with_the_replica_killed_every_page_and_endpoint_answers_fast(
    replica: Replica, fleet: Fleet
) -> None:
    dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    with psycopg.connect(**_primary_params(), autocommit=True) as conn:
        wait_until_replayed(conn, replica, dbname)
    with served() as record:
        assert fleet.staff_api.get("/api/v1/trades/").status_code == 200
    assert record.aliases() == {ALIAS}  # the replica served, and its connection is kept
    replica.kill()
    timings = []
    for url in staff_reads(fleet.bot.bot_id):
        start = time.monotonic()
        with served() as record:
            response = get(fleet, url)
        timings.append((time.monotonic() - start, url))
        assert response.status_code == 200, (url, response.content[:300])
        assert record.aliases() == {DEFAULT_DB_ALIAS}, url
    assert max(timings)[0] < 1.0, max(timings)
    ready = Client().get("/health/ready")
    assert ready.status_code == 200
    check = ready.json()["checks"]["replicas"]["replicas"][ALIAS]
    assert check == {
        "status": "warning",
        "lag_seconds": None,
        "max_lag_seconds": MAX_LAG,
        "reason": "unreachable: reads go to the primary",
    }


@pytest.mark.parametrize("kept", [False, True], ids=["new-connection", "kept-connection"])
def test_an_unreachable_replica_costs_one_timeout_then_nothing(
    replica: Replica, fleet: Fleet, kept: bool
) -> None:
    """A replica that takes connections but never answers (SIGSTOP): the first read waits out
    the connect timeout once (a new connection), or the lag check's wait for an answer on the
    connection it kept (cut after the same time); the failure is remembered, and the next reads
    do not wait."""
    if kept:
        dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
        with psycopg.connect(**_primary_params(), autocommit=True) as conn:
            wait_until_replayed(conn, replica, dbname)
        with served() as record:
            assert fleet.staff_api.get("/api/v1/portfolio/summary/").status_code == 200
        assert record.aliases() == {ALIAS}
    else:
        connections[ALIAS].close()
    pids = replica.all_pids()
    replica.signal_all(pids, signal.SIGSTOP)
    # A safety net: a read that waited on the frozen replica for good would hang the test; it
    # is thawed after 10 s, so such a read fails the timing below instead.
    thaw = threading.Timer(10, replica.signal_all, args=(pids, signal.SIGCONT))
    thaw.start()
    try:
        if kept:
            time.sleep(replicas.CHECK_SECONDS)  # its next lag check is due
        timings = []
        for _ in range(5):
            start = time.monotonic()
            with served() as record:
                assert fleet.staff_api.get("/api/v1/portfolio/summary/").status_code == 200
            timings.append(time.monotonic() - start)
            assert record.aliases() == {DEFAULT_DB_ALIAS}
    finally:
        thaw.cancel()
        replica.signal_all(pids, signal.SIGCONT)
    assert timings[0] < 2 + 1.5, timings  # DATABASE_REPLICA_CONNECT_TIMEOUT, 2 s here
    assert max(timings[1:]) < 0.5, timings
    assert replicas.replica_state(ALIAS).error == "unreachable"
