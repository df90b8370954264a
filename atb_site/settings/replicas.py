"""DATABASE_REPLICA_URL: the read replicas staff analytics may read from (atb_site/db/replicas.py).

Each URL becomes a database alias ``replica_1``, ``replica_2`` ... with the primary's settings
(engine, keepalives, session options), its own server, database, user and password, and a short
connect timeout: a replica that does not answer is skipped for the primary, and must cost a
request little. Tests never create a test database of their own for one: it mirrors ``default``
unless a test points it at a real replica.
"""

import copy
from typing import Any

import environ

URL_PARTS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")


def replica_databases(
    urls: list[str], *, primary: dict[str, Any], connect_timeout: int, conn_max_age: int
) -> dict[str, dict[str, Any]]:
    databases = {}
    for number, url in enumerate((u.strip() for u in urls if u.strip()), start=1):
        parsed = environ.Env.db_url_config(url)
        config = copy.deepcopy(primary)
        config.update({part: parsed.get(part, "") for part in URL_PARTS})
        config["OPTIONS"].update(parsed.get("OPTIONS", {}))
        # Kept connections, not DATABASE_POOL's pool: one per thread that reads from it.
        config["OPTIONS"].pop("pool", None)
        config["CONN_MAX_AGE"] = conn_max_age
        config["OPTIONS"]["connect_timeout"] = connect_timeout
        config["TEST"] = {"MIRROR": "default"}
        databases[f"replica_{number}"] = config
    return databases
