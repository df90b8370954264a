"""Staff reads of the API from a read replica (atb_site/db/replicas.py).

A view that mixes ``StaffReadsFromReplica`` in serves a GET or HEAD by a staff user (a session
or a staff token) from a replica when one is configured and fresh; a bot's token, and every
other method, reads and writes the primary, so a bot always reads its own writes.
"""

from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView

from atb_site.db import replicas
from trading.api.permissions import IsStaff

READ_METHODS = frozenset({"GET", "HEAD"})


class StaffReadsFromReplica(APIView):
    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parent = super().dispatch
        return replicas.serve_staff_read(lambda: parent(request, *args, **kwargs))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        if request.method in READ_METHODS and IsStaff().has_permission(request, self):
            replicas.want_replica()
