"""The rows a caller may read, one selector per table the API lists.

``bot`` is the calling bot, or ``None`` for a staff caller. A bot sees only its own rows: every
selector filters by it here, once, so no view can forget to. Each returns an unordered,
unevaluated queryset (the pagination orders it by its key) that loads everything its output
serializer reads in a fixed number of queries, whatever the number of rows: the serializers
read only the rows' own columns (``bot_id``, ``trade_id``, ``position_id``), so no join is
needed, and an order's fills come in one more query.
"""

from django.db.models import F, Prefetch, QuerySet

from trading.models import AccountBalance, Bot, Order, OrderFill, Position, Signal, Trade


def bot_list(*, bot: Bot | None) -> QuerySet[Bot]:
    """Every bot for staff; for a bot's token, only itself."""
    bots = Bot.objects.order_by()
    return bots if bot is None else bots.filter(pk=bot.pk)


def trade_list(*, bot: Bot | None) -> QuerySet[Trade]:
    trades = Trade.objects.order_by()
    return trades if bot is None else trades.filter(bot=bot)


def order_list(*, bot: Bot | None, with_fills: bool = False) -> QuerySet[Order]:
    """Orders; ``with_fills`` loads each order's fills (oldest first) in one more query."""
    orders = Order.objects.order_by()
    if bot is not None:
        orders = orders.filter(bot=bot)
    if with_fills:
        orders = orders.prefetch_related(
            Prefetch("fills", queryset=OrderFill.objects.order_by("filled_at", "id"))
        )
    return orders


def fill_list(*, bot: Bot | None) -> QuerySet[OrderFill]:
    """Every fill (a bot's token: of its own orders), with its order's bot_id, client_order_id
    and symbol (one join, no query per row)."""
    fills = OrderFill.objects.order_by().annotate(
        bot_id=F("order__bot_id"),
        client_order_id=F("order__client_order_id"),
        symbol=F("order__symbol"),
    )
    return fills if bot is None else fills.filter(order__bot=bot)


def position_list(*, bot: Bot | None) -> QuerySet[Position]:
    positions = Position.objects.order_by()
    return positions if bot is None else positions.filter(bot=bot)


def signal_list(*, bot: Bot | None) -> QuerySet[Signal]:
    signals = Signal.objects.order_by()
    return signals if bot is None else signals.filter(bot=bot)


def balance_list(*, bot: Bot | None) -> QuerySet[AccountBalance]:
    balances = AccountBalance.objects.order_by()
    return balances if bot is None else balances.filter(bot=bot)
