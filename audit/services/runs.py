"""Claims of scheduled runs (audit.scheduled_runs): one per (task, due slot)."""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

# Claims older than this are deleted by the task's next claim: long past any redelivery.
CLAIMS_KEPT = timedelta(days=7)

_CLAIM_SQL = """
INSERT INTO audit.scheduled_runs (task, slot, claimed_at) VALUES (%s, %s, %s)
ON CONFLICT (task, slot) DO NOTHING
RETURNING id
"""
_PRUNE_SQL = "DELETE FROM audit.scheduled_runs WHERE task = %s AND slot < %s"


def scheduled_run_claim(*, task: str, slot: datetime) -> bool:
    """Claim ``slot`` for ``task`` in the caller's transaction; False if a committed run has it.

    Call it inside the transaction that does the slot's work, under the task's advisory lock:
    the claim then commits with the work or not at all, so a run that dies leaves none behind.
    The task's claims older than CLAIMS_KEPT go in the same transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a scheduled run claims its slot inside the transaction of its work")
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [task, slot, timezone.now()])
        claimed = cursor.fetchone() is not None
        if claimed:
            cursor.execute(_PRUNE_SQL, [task, slot - CLAIMS_KEPT])
    return claimed
