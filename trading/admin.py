"""Read-only admin pages for what the bots record, and the API tokens. The bot registry itself
is botconfig's.

Every list is ordered by an indexed column, counts at most a capped number of rows, loads its
related rows in the same query and filters by typed values instead of DISTINCT lists.
"""

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from atb_site.admin_tools import (
    DateRangeFilter,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    TextInputFilter,
)
from trading.admin_page import list_page
from trading.admin_rows import value_rows
from trading.models import (
    AccountBalance,
    ApiToken,
    Bot,
    MarketData,
    Order,
    OrderFill,
    Position,
    RiskMetric,
    RiskMetricsBacklog,
    Signal,
    Trade,
)
from trading.services.tokens import bot_token_create, staff_token_create, token_revoke


class BotFilter(admin.RelatedFieldListFilter):
    """The bot filter, its choices read as bot ids alone (Django's loads every bot whole, its
    metadata and settings too, to write ``str(bot)``, which is the bot id), and their links
    written from one query string (Django's copies, sorts and encodes the list's parameters
    once per bot: a hundred times a page)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        ordering = self.field_admin_ordering(field, request, model_admin)
        bots = Bot._default_manager.complex_filter(field.get_limit_choices_to())
        return [
            (bot_id, bot_id) for bot_id in bots.order_by(*ordering).values_list("bot_id", flat=True)
        ]

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        if changelist.add_facets:  # counts per bot: Django's own way
            yield from super().choices(changelist)
            return
        # RelatedFieldListFilter.choices without facets.
        yield {
            "selected": self.lookup_val is None and not self.lookup_val_isnull,
            "query_string": changelist.get_query_string(
                remove=[self.lookup_kwarg, self.lookup_kwarg_isnull]
            ),
            "display": _("All"),
        }
        link = one_value_links(changelist, self.lookup_kwarg, [self.lookup_kwarg_isnull])
        chosen = self.lookup_val
        for pk_val, val in self.lookup_choices:
            yield {
                "selected": chosen is not None and str(pk_val) in chosen,
                "query_string": link(pk_val),
                "display": val,
            }
        if self.include_empty_choice:
            yield {
                "selected": bool(self.lookup_val_isnull),
                "query_string": changelist.get_query_string(
                    {self.lookup_kwarg_isnull: "True"}, [self.lookup_kwarg]
                ),
                "display": self.empty_value_display,
            }


def one_value_links(changelist: ChangeList, key: str, remove: list[str]) -> Callable[[Any], str]:
    """``lambda value: changelist.get_query_string({key: value}, remove)``, the other
    parameters encoded once: the same string (sorted by name, ``urlencode(doseq=True)``)."""
    params = changelist.filter_params.copy()
    for prefix in remove:
        for name in list(params):
            if name.startswith(prefix):
                del params[name]
    params.pop(key, None)
    ordered = sorted(params.items())
    before = urlencode([item for item in ordered if item[0] < key], doseq=True)
    after = urlencode([item for item in ordered if item[0] > key], doseq=True)

    head = "?" + (before + "&" if before else "") + quote_plus(key, safe="") + "="
    tail = "&" + after if after else ""

    def link(value: Any) -> str:
        if isinstance(value, str):  # urlencode's own steps for a string
            return head + quote_plus(value, safe="") + tail
        own = urlencode([(key, value)], doseq=True)
        return "?" + "&".join(part for part in (before, own, after) if part)

    return link


class ShownColumnsChangeList(ChangeList):
    """A list page that loads the columns its rows show, not every column of the row and of
    its bot (JSON, timestamps and figures no cell shows). A related row is shown as its
    ``str()``: for a bot, its bot id, the one column loaded (a ``__str__`` reading more would
    cost a query a row: tests/test_admin_rows.py pins each list's queries).

    Where trading.admin_rows writes the rows and every column is a value of the row itself (a
    bot shown by its key, the row's bot_id), the page's rows are read as named tuples of those
    columns instead (``value_rows``): no model instance, no join."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        queryset = super().get_queryset(request, exclude_parameters)
        joined = queryset.query.select_related
        columns = shown_columns(self.model, self.list_display, joined)
        return queryset if columns is None else queryset.only(*columns)

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = value_rows(self)  # tuples, when trading.admin_rows writes the page's rows
        if rows is not None:
            self.result_list = rows


def shown_columns(model: type[models.Model], list_display: Any, joined: Any) -> list[str] | None:
    """The columns a list shows: a field's own, a joined foreign key's related key; None when
    a column is not a model field (a callable may read anything)."""
    columns: list[str] = []
    for name in list_display:
        try:
            field = model._meta.get_field(name) if isinstance(name, str) else None
        except FieldDoesNotExist:
            field = None
        if not isinstance(field, models.Field) or field.column is None:
            return None
        if isinstance(field, models.ForeignKey) and (
            joined is True or (isinstance(joined, dict) and name in joined)
        ):
            columns.append(f"{name}__{field.target_field.name}")
        else:
            columns.append(name)
    return columns


class ShownColumnsAdmin(ReadOnlyModelAdmin):
    """Lists load only the columns they show (ShownColumnsChangeList)."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ShownColumnsChangeList

    def list_page_response(self, response: Any) -> Any:
        """The page written in one pass (trading.admin_page) where it is one that writes."""
        if not isinstance(response, TemplateResponse) or response.is_rendered:
            return response
        page = list_page(response)
        if page is None:
            return response
        response.content = page  # then what render() does after rendering
        rendered: Any = response
        for callback in getattr(response, "_post_render_callbacks", []):
            rendered = callback(rendered) or rendered
        return rendered


@admin.register(Trade)
class TradeAdmin(ShownColumnsAdmin):
    list_display = (
        "id",
        "bot",
        "trade_id",
        "symbol",
        "side",
        "status",
        "source",
        "quantity",
        "entry_price",
        "exit_price",
        "entry_time",
        "exit_time",
        "pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = (
        ("bot", BotFilter),
        ("symbol", TextInputFilter),
        "status",
        "side",
        "source",
        ("entry_time", DateRangeFilter),
    )
    ordering = ("-entry_time", "-id")  # trades_entry_idx / trades_bot_entry_idx
    sortable_by = ("entry_time",)


class OrderFillInline(ReadOnlyTabularInline):
    model = OrderFill
    fields = ("fill_id", "quantity", "price", "fee", "fee_currency", "filled_at")


@admin.register(Order)
class OrderAdmin(ShownColumnsAdmin):
    list_display = (
        "id",
        "bot",
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "status",
        "quantity",
        "filled_quantity",
        "price",
        "avg_fill_price",
        "created_at",
    )
    list_select_related = ("bot",)
    list_filter = (
        ("bot", BotFilter),
        ("symbol", TextInputFilter),
        "status",
        "order_type",
        "side",
        ("created_at", DateRangeFilter),
    )
    ordering = ("-id",)  # the primary key: newest first without sorting the table
    sortable_by = ()
    inlines = (OrderFillInline,)


@admin.register(Position)
class PositionAdmin(ShownColumnsAdmin):
    list_display = (
        "id",
        "bot",
        "symbol",
        "exchange",
        "side",
        "status",
        "quantity",
        "avg_entry_price",
        "current_price",
        "unrealized_pnl_usd",
        "realized_pnl_usd",
        "opened_at",
        "closed_at",
    )
    list_select_related = ("bot",)
    list_filter = (
        ("bot", BotFilter),
        ("symbol", TextInputFilter),
        "status",
        "side",
        ("opened_at", DateRangeFilter),
    )
    ordering = ("-id",)
    sortable_by = ()


@admin.register(MarketData)
class MarketDataAdmin(ShownColumnsAdmin):
    list_display = (
        "symbol",
        "exchange",
        "timeframe",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
    )
    list_filter = (
        ("symbol", TextInputFilter),
        ("exchange", TextInputFilter),
        "timeframe",
        ("ts", DateRangeFilter),
    )
    sortable_by = ()

    def get_ordering(self, request: HttpRequest) -> Any:
        # Filtered by symbol, walk the candle index (symbol, exchange, timeframe, ts);
        # unfiltered, the primary key gives the newest rows without sorting the table.
        if request.GET.get("symbol", "").strip():
            return ("symbol", "exchange", "timeframe", "-ts")
        return ("-id",)


@admin.register(Signal)
class SignalAdmin(ShownColumnsAdmin):
    list_display = (
        "id",
        "bot",
        "symbol",
        "signal_type",
        "direction",
        "strength",
        "price",
        "generated_at",
        "validated",
        "executed",
        "outcome",
        "outcome_pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = (
        ("bot", BotFilter),
        ("symbol", TextInputFilter),
        "direction",
        "outcome",
        "validated",
        "executed",
        ("generated_at", DateRangeFilter),
    )
    ordering = ("-id",)
    sortable_by = ()


@admin.register(AccountBalance)
class AccountBalanceAdmin(ShownColumnsAdmin):
    list_display = (
        "ts",
        "bot",
        "snapshot_type",
        "balance_usd",
        "equity_usd",
        "margin_used_usd",
        "available_margin_usd",
        "unrealized_pnl_usd",
    )
    list_select_related = ("bot",)
    list_filter = (("bot", BotFilter), "snapshot_type", ("ts", DateRangeFilter))
    ordering = ("-id",)
    sortable_by = ()


@admin.register(RiskMetric)
class RiskMetricAdmin(ShownColumnsAdmin):
    list_display = (
        "date",
        "bot",
        "trades_closed",
        "wins",
        "losses",
        "win_rate",
        "net_pnl_usd",
        "profit_factor",
        "max_drawdown_pct",
        "sharpe_30d",
        "sortino_30d",
        "equity_close_usd",
    )
    list_select_related = ("bot",)
    list_filter = (("bot", BotFilter), ("date", DateRangeFilter))
    ordering = ("-date", "bot_id")  # one row per bot per day: small, and (bot, date) is unique
    sortable_by = ("date",)


@admin.register(RiskMetricsBacklog)
class RiskMetricsBacklogAdmin(ShownColumnsAdmin):
    """Bots whose daily rows late trades made stale; the next scheduled rollup redoes them."""

    list_display = ("bot", "since", "marked_at")
    ordering = ("bot_id",)


# --- API tokens ----------------------------------------------------------------------------------


class ApiTokenAddForm(forms.ModelForm):
    """A token for one bot or for one staff user; the key itself is made by the service."""

    class Meta:
        model = ApiToken
        fields = ("bot", "user", "name")
        help_texts = {
            "bot": "Either a bot (the token reads and writes only that bot's rows) ...",
            "user": "... or a staff user (a personal token with that user's rights).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user_field = self.fields.get("user")
        if isinstance(user_field, forms.ModelChoiceField):
            # A token of a non-staff or inactive user would be refused by every endpoint.
            user_field.queryset = User.objects.filter(is_staff=True, is_active=True).order_by(
                "username"
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "bot" in self.errors or "user" in self.errors:
            return cleaned
        if (cleaned.get("bot") is None) == (cleaned.get("user") is None):
            # On the field, so the model's api_tokens_one_owner check does not say it again.
            self.add_error("bot", "Choose either a bot or a staff user, not both or neither.")
        return cleaned


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        match self.value():
            case "live":
                return queryset.filter(revoked_at__isnull=True)
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here or by ``create_bot_token``/``create_api_token``, then only revoked.

    The full token is shown once, in the message after saving; only its sha256 is stored, and
    neither the hash nor the owner can be changed afterwards. Tokens are revoked, not deleted,
    so their prefix still identifies them in logs.
    """

    form = ApiTokenAddForm
    list_display = ("prefix", "owner", "name", "created_at", "last_used_at", "revoked")
    list_select_related = ("bot", "user")
    list_filter = (TokenStateFilter, ("bot", BotFilter))
    search_fields = ("prefix", "name", "bot__bot_id", "user__username")
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at", "last_used_at")
    show_facets = admin.ShowFacets.NEVER
    actions = ("revoke_tokens",)
    readonly_fields = ("prefix", "bot", "user", "name", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ("bot", "user", "name")
        return self.readonly_fields  # never key_hash

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # a token is never edited: revoke it and make another

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:  # unreachable: the change permission is refused above
            raise PermissionDenied
        bot, user, name = obj.bot, obj.user, obj.name
        if bot is not None:
            issued = bot_token_create(bot=bot, name=name)
        elif user is not None:
            issued = staff_token_create(user=user, name=name)
        else:  # the form refuses this
            raise PermissionDenied
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(issued.token, field.attname))
        obj._state.adding = False
        obj._state.db = issued.token._state.db
        messages.warning(
            request,
            f"The new token is {issued.key} - copy it now: it is shown only this once "
            "and is not stored anywhere.",
        )

    @admin.display(description="owner")
    def owner(self, token: ApiToken) -> str:
        if token.bot_id is not None:
            return f"bot {token.bot_id}"
        return f"user {token.user.username}" if token.user is not None else "-"

    @admin.display(description="revoked", boolean=True, ordering="revoked_at")
    def revoked(self, token: ApiToken) -> bool:
        return token.revoked_at is not None

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = already = 0
        for token in queryset:
            if token.revoked_at is not None:
                already += 1
                continue
            token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked; {already} were already revoked.")


from trading import admin_runs  # noqa: E402, F401 - registers BotRunAdmin
