"""trading.market_data becomes a table partitioned by month of ``ts`` (PostgreSQL's declarative
partitioning: no extension, any server from 12 up; Railway's included).

A partitioned table's primary key and unique constraints must hold its partition key, so the
primary key is (id, ts): ``id`` stays the model's key (the admin, the API and Django know a
candle by it) and stays unique, drawn from one sequence by every insert (no writer sets it).
market_data_candle_uniq (symbol, exchange, timeframe, ts) and every CHECK stay as they were.

The conversion, in the migration's transaction: the table is renamed aside, the partitioned
table made LIKE it (columns in the same order, CHECKs), a partition made for each month that
holds candles and for this month and the next two, the rows copied in the candle key's order (so
each month starts clustered: one market's candles on neighbouring pages), the keys built after
the copy, the months closed by now marked clustered (their rows are in key order already), the
sequence moved past the largest id, and the old table dropped. The reverse does
the same the other way. The model is unchanged: Django's state needs no operation.
"""

from datetime import date

from django.db import migrations

OLD = "trading.market_data_unpartitioned"
NEW = "trading.market_data"
KEYS = """
ALTER TABLE {table} ADD CONSTRAINT {pkey} PRIMARY KEY ({pk});
ALTER TABLE {table} ADD CONSTRAINT market_data_candle_uniq UNIQUE (symbol, exchange, timeframe, ts);
"""
COPY = "INSERT INTO {to} SELECT * FROM {source} ORDER BY symbol, exchange, timeframe, ts"


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _set_aside(cursor, new_name: str) -> None:
    """Rename trading.market_data and its two indexes out of the way (index names are the
    schema's, not the table's)."""
    cursor.execute(f"ALTER TABLE {NEW} RENAME TO {new_name}")
    cursor.execute(
        f"ALTER TABLE trading.{new_name} RENAME CONSTRAINT market_data_candle_uniq TO {new_name}_candle_uniq"
    )
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
        [f"trading.{new_name}"],
    )
    (pkey,) = cursor.fetchone()
    cursor.execute(f"ALTER TABLE trading.{new_name} RENAME CONSTRAINT {pkey} TO {new_name}_pkey")


def forward(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {NEW} IN ACCESS EXCLUSIVE MODE")
        _set_aside(cursor, "market_data_unpartitioned")
        # Its identity's sequence (market_data_id_seq) goes: the new table's takes the name.
        cursor.execute(f"ALTER TABLE {OLD} ALTER COLUMN id DROP IDENTITY")
        cursor.execute(
            f"CREATE TABLE {NEW} (LIKE {OLD} INCLUDING CONSTRAINTS) PARTITION BY RANGE (ts)"
        )
        cursor.execute(
            "CREATE SEQUENCE trading.market_data_id_seq AS bigint OWNED BY trading.market_data.id"
        )
        cursor.execute(
            f"ALTER TABLE {NEW} ALTER COLUMN id SET DEFAULT nextval('trading.market_data_id_seq')"
        )
        cursor.execute(
            f"""
            SELECT m::date FROM (
                SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') AS m FROM {OLD}
                UNION
                SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n)
                FROM generate_series(0, 2) AS n
            ) months ORDER BY m
            """  # noqa: S608 - constant text
        )
        months = [month for (month,) in cursor.fetchall()]
        for month in months:
            cursor.execute(
                f"CREATE TABLE trading.market_data_p{month:%Y_%m} PARTITION OF {NEW} "
                f"FOR VALUES FROM ('{month:%Y-%m-01} 00:00:00+00') TO ('{_next(month)} 00:00:00+00')"
            )
        cursor.execute(COPY.format(to=NEW, source=OLD))
        # Each partition's keys under names of their own (as trading.services.partitions makes
        # them), built after the copy; the parent's keys then take them in.
        for month in months:
            cursor.execute(
                f"ALTER TABLE trading.market_data_p{month:%Y_%m} "
                f"ADD CONSTRAINT market_data_pkey_p{month:%Y_%m} PRIMARY KEY (id, ts), "
                f"ADD CONSTRAINT market_data_candle_uniq_p{month:%Y_%m} "
                "UNIQUE (symbol, exchange, timeframe, ts)"
            )
        cursor.execute(KEYS.format(table=NEW, pkey="market_data_pkey", pk="id, ts"))
        # The copy wrote each month in the candle key's order: the months closed by now (a day
        # after their end, as the maintenance task counts) are marked clustered on that key, so
        # the task does not rewrite the whole history once more.
        cursor.execute("SELECT (now() AT TIME ZONE 'UTC' - interval '1 day')::date")
        (closed_before,) = cursor.fetchone()
        for month in months:
            if _next(month) <= closed_before:
                cursor.execute(
                    f"ALTER TABLE trading.market_data_p{month:%Y_%m} "
                    f"CLUSTER ON market_data_candle_uniq_p{month:%Y_%m}"
                )
        cursor.execute(
            f"SELECT setval('trading.market_data_id_seq', coalesce(max(id), 0) + 1, false) FROM {OLD}"  # noqa: S608
        )
        cursor.execute(f"DROP TABLE {OLD}")
        cursor.execute(f"ANALYZE {NEW}")


def backward(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {NEW} IN ACCESS EXCLUSIVE MODE")
        _set_aside(cursor, "market_data_partitioned")
        cursor.execute("ALTER TABLE trading.market_data_partitioned ALTER COLUMN id DROP DEFAULT")
        cursor.execute("DROP SEQUENCE trading.market_data_id_seq")
        cursor.execute(
            f"CREATE TABLE {NEW} (LIKE trading.market_data_partitioned INCLUDING CONSTRAINTS)"
        )
        cursor.execute(f"ALTER TABLE {NEW} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        cursor.execute(COPY.format(to=NEW, source="trading.market_data_partitioned"))
        cursor.execute(KEYS.format(table=NEW, pkey="market_data_pkey", pk="id"))
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('trading.market_data', 'id'), "
            "coalesce(max(id), 0) + 1, false) FROM trading.market_data"
        )
        cursor.execute("DROP TABLE trading.market_data_partitioned")


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0010_derived_candles"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
