"""Helpers of the data set's tests: a silent log, and one value of a query."""

from django.db import connection


def quiet(message: str) -> None:
    pass


def scalar(sql: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    assert row is not None
    return row[0]
