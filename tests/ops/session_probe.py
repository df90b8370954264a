"""What a connection of this process was given: its session timeouts and TCP keepalives.

Run as a script, or as a Celery task by a real worker that includes this module (``-I``)."""

import json
from pathlib import Path
from typing import Any

from django.db import connection

from atb_site.celery import app
from atb_site.db.session import process_kind

SHOWN = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
PARAMETERS = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count")


def session_report() -> dict[str, Any]:
    with connection.cursor() as cursor:
        shown = {}
        for name in SHOWN:
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    parameters = connection.connection.info.get_parameters()
    return {
        "kind": process_kind(),
        **shown,
        **{name: parameters.get(name) for name in (*PARAMETERS, "tcp_user_timeout")},
    }


@app.task(name="tests.ops.session_probe.write_session_report")
def write_session_report(path: str) -> None:
    Path(path).write_text(json.dumps(session_report()))
