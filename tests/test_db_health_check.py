"""The health check of a kept connection (CONN_HEALTH_CHECKS) asks the server only when the
server said something since the connection's last use (atb_site/db/base.py)."""

import select
import time
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # They watch the server session behind Django's connection (its pid, ended by the server):
    # behind PgBouncer the client holds no server session of its own between transactions.
    pytest.mark.skipif(settings.DATABASE_PGBOUNCER, reason="no server session of its own"),
]


def other_connection() -> psycopg.Connection[Any]:
    config = connection.settings_dict
    return psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname=config["NAME"],
        autocommit=True,
    )


def last_query(observer: psycopg.Connection[Any], pid: int) -> str:
    row = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0])


def test_an_idle_connection_is_usable_without_a_round_trip() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query before the check'")
    pid = connection.connection.info.backend_pid

    with other_connection() as observer:
        assert connection.is_usable() is True
        assert last_query(observer, pid) == "SELECT 'the last query before the check'"


def test_a_connection_the_server_ended_is_not_usable() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pid = connection.connection.info.backend_pid
    socket = connection.connection.pgconn.socket

    with other_connection() as observer:
        observer.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while not select.select([socket], [], [], 0.05)[0] and time.monotonic() < deadline:
        pass

    assert connection.is_usable() is False
    connection.close()
