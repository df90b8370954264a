"""One view per collection URL that both bots write to and readers list.

``orders/``, ``positions/``, ``signals/`` and ``balances/`` take a bot's POST (the write views
of their own modules) and a GET list (``trading.api.lists``). Django routes a URL to one view,
so each pair is combined here; ``trades/`` is combined in ``trading.api.trades`` itself.

POST: a bot's token only (staff get 403). GET: a bot's token (its own rows) or staff (all).
"""

from typing import Any

from trading.api.balances import BalanceWriteView
from trading.api.lists import BalanceListView, OrderListView, PositionListView, SignalListView
from trading.api.orders import OrderWriteView
from trading.api.permissions import IsBot, IsBotOrStaff
from trading.api.positions import PositionWriteView
from trading.api.signals import SignalWriteView


class _WriteOrRead:
    """POST needs a bot's token; every other method (GET) a bot's token or staff."""

    request: Any

    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else [IsBotOrStaff()]


class OrderCollectionView(_WriteOrRead, OrderWriteView, OrderListView):
    pass


class PositionCollectionView(_WriteOrRead, PositionWriteView, PositionListView):
    pass


class SignalCollectionView(_WriteOrRead, SignalWriteView, SignalListView):
    pass


class BalanceCollectionView(_WriteOrRead, BalanceWriteView, BalanceListView):
    pass
