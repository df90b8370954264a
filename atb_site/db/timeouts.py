"""Each kind of process's PostgreSQL timeouts, read from the environment without Django.

Settings (``DATABASE_SESSION_TIMEOUTS``), the session options a connection starts with
(atb_site/db/session.py) and the PgBouncer configuration (atb_site/db/pgbouncer.py, which
tools/devservices.py runs before Django is loaded) all read them here, so the three agree.
"""

import math
import os
from collections.abc import Mapping

KINDS = ("web", "worker", "beat", "command")
# The PostgreSQL settings each kind gets, in the order they are sent.
TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
_ENV_NAMES = ("STATEMENT_TIMEOUT", "LOCK_TIMEOUT", "IDLE_IN_TRANSACTION_TIMEOUT")

# Seconds, 0 for none: DATABASE_<TIMEOUT>_<KIND>. The web's are short, as a request must answer
# before gunicorn's worker timeout; a worker's leave room for refreshing views and rollups; a
# command's (migrate, backups, dataset generation, the bench) have no statement or lock timeout
# at all, only a limit on a session left idle inside a transaction.
DEFAULTS = {
    #          statement, lock, idle in transaction
    "web": (10, 5, 30),
    "worker": (1800, 60, 600),
    "beat": (30, 10, 60),
    "command": (0, 0, 3600),
}


class TimeoutSettingError(ValueError):
    """A DATABASE_*_TIMEOUT_* variable that is not 0 or a number of seconds."""


def seconds(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise TimeoutSettingError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TimeoutSettingError(f"{name} must be 0 (none) or a number of seconds, not {value}")
    return value


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Every kind's timeouts in seconds, by PostgreSQL setting name."""
    return {
        kind: {
            setting: seconds(f"DATABASE_{env_name}_{kind.upper()}", default, environ)
            for setting, env_name, default in zip(TIMEOUTS, _ENV_NAMES, values, strict=True)
        }
        for kind, values in DEFAULTS.items()
    }


def jit_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """DATABASE_JIT, as django-environ reads a boolean."""
    raw = (os.environ if environ is None else environ).get("DATABASE_JIT", "")
    return raw.strip().lower() in {"true", "on", "ok", "y", "yes", "1"}


def settings_of(kind_timeouts: Mapping[str, float], *, jit: bool) -> dict[str, str]:
    """The PostgreSQL settings a session of one kind starts with: its timeouts in milliseconds,
    and ``jit=off`` unless ``jit``."""
    values = {name: str(round(kind_timeouts[name] * 1000)) for name in TIMEOUTS}
    if not jit:
        values["jit"] = "off"
    return values
