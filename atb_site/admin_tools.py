"""Admin plumbing every app's admin shares; nothing here knows about bots or trades.

Tables such as trades and market data grow to millions of rows, and Django's admin defaults
scan them whole: a ``COUNT(*)`` on every list page, a ``SELECT DISTINCT`` per value filter, a
dropdown of every related row. The pieces below keep each list page to a few indexed queries:

- ``CappedCountPaginator`` counts at most ``count_cap + 1`` rows (``COUNT(*)`` over a ``LIMIT``
  subquery) and says "more than N" beyond that.
- ``TextInputFilter`` filters by an exact value typed in a box (``WHERE field = %s``).
- ``DateRangeFilter`` filters by a since/until pair of dates (``field >= %s AND field < %s``).
- ``ReadOnlyModelAdmin`` / ``ReadOnlyTabularInline`` show data without add, change or delete.
- ``AdminSite`` (the project's ``admin.site``) builds the app list, the apps and models a user
  may see that every admin page lists in its sidebar, once per set of permissions and language.
- ``JSONObjectField`` edits a JSON object as indented text and refuses anything else, and any
  value ``trading.jsonvalues`` refuses (nested too deep, a lone surrogate).
"""

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.contrib.auth import get_backends
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from atb_site.db import replicas
from trading.api.shapes import JSON_MAX_DEPTH
from trading.jsonvalues import TOO_DEEP, json_refusal, json_refused


def request_user(request: HttpRequest) -> User:
    """The signed-in user of an admin request (the admin lets no one else in)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def json_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


def json_compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


# Levels of nesting a JSON block shows (the API refuses deeper values; older rows may hold them).
SHOWN_JSON_DEPTH = JSON_MAX_DEPTH


def json_depth(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (0 for a scalar), without
    recursion: a value nested a thousand levels deep must not exhaust Python's stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _json_cut(value: Any, levels: int) -> Any:
    """``value`` with whatever lies below ``levels`` levels replaced by "…"."""
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return "…"
    if isinstance(value, dict):
        return {key: _json_cut(child, levels - 1) for key, child in value.items()}
    return [_json_cut(child, levels - 1) for child in value]


def json_block(value: Any) -> SafeString:
    """A JSON value as an indented, escaped ``<pre>`` block for read-only pages. A value nested
    deeper than SHOWN_JSON_DEPTH is shown down to that level, with a note saying how deep it
    goes (rendering it whole would exhaust the stack: a 500)."""
    depth = json_depth(value)
    if depth <= SHOWN_JSON_DEPTH:
        return format_html('<pre class="atb-json">{}</pre>', json_pretty(value))
    return format_html(
        '<p class="atb-json-note">This value nests {} levels deep; the first {} are shown.</p>'
        '<pre class="atb-json">{}</pre>',
        depth,
        SHOWN_JSON_DEPTH,
        json_pretty(_json_cut(value, SHOWN_JSON_DEPTH)),
    )


# --- Counting ------------------------------------------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most ``count_cap + 1`` rows, so a list page never counts a whole big table.

    ``queryset[:n].count()`` runs ``SELECT COUNT(*) FROM (SELECT ... LIMIT n)``: PostgreSQL stops
    after ``n`` rows. Past the cap the paginator reports ``count_cap`` rows (the pages a person
    can walk through) and ``is_capped`` tells the template to say "more than".
    """

    count_cap = 10_000

    @cached_property
    def rows_seen(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            # Unordered: any count_cap + 1 rows will do, so no sort is needed to find them.
            capped = object_list.order_by()[: self.count_cap + 1]
            if _plain_rows(capped):
                return capped_count(capped)
            return capped.count()
        return len(object_list)

    @cached_property
    def count(self) -> int:
        return min(self.rows_seen, self.count_cap)

    @property
    def is_capped(self) -> bool:
        return self.rows_seen > self.count_cap


def _plain_rows(queryset: QuerySet[Any]) -> bool:
    """Whether a row of ``queryset`` is a row of its table (filters and joins, no grouping,
    DISTINCT, set operation or extra select): then its keys are as many as its rows."""
    query = queryset.query
    return not (
        query.annotations
        or query.group_by is not None
        or query.distinct
        or query.combinator
        or query.extra
    )


def capped_count(capped: QuerySet[Any]) -> int:
    """``capped.count()`` for a sliced queryset of plain rows, the same
    ``SELECT COUNT(*) FROM (... LIMIT n) subquery``, the inner query compiled as it stands
    (its keys only) instead of through ``Query.get_aggregation``, which clones and rewrites
    the query and its subquery first (0.35 against 0.56 ms of CPU for the trade list's count on
    the bench machine)."""
    inner = capped.values_list("pk")
    sql, params = inner.query.get_compiler(using=inner.db).as_sql()
    with connections[inner.db].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) subquery", params)  # noqa: S608
        row = cursor.fetchone()
    return int(row[0])


# --- List filters --------------------------------------------------------------------------------


class _InputFilter(admin.FieldListFilter):
    """A filter drawn as a small GET form that keeps the other parameters of the list."""

    def hidden_params(self, changelist: ChangeList) -> list[tuple[str, str]]:
        own = set(self.expected_parameters())
        return [
            (key, str(value))
            for key, value in changelist.params.items()
            if key not in own and key != PAGE_VAR
        ]

    def param(self, name: str) -> str:
        """The last value given for ``name``, stripped ('' when absent)."""
        values = self.used_parameters.get(name)
        if isinstance(values, list) and values:
            return str(values[-1]).strip()
        return ""

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        yield {
            "display": self.title,
            "selected": not any(self.param(p) for p in self.expected_parameters() if p),
            "query_string": changelist.get_query_string(
                remove=[p for p in self.expected_parameters() if p]
            ),
            "hidden_params": self.hidden_params(changelist),
        }

    def get_facet_counts(self, pk_attname: str, filtered_qs: QuerySet[Any]) -> dict[str, Count]:
        return {}  # a typed value has no facets


class TextInputFilter(_InputFilter):
    """Exact match on a value typed in a box: ``WHERE field = %s``, served by an index.

    Django's default filter for a text field lists ``SELECT DISTINCT field`` over the table.
    Use as ``list_filter = [("symbol", TextInputFilter)]``; the query parameter is the field path.
    """

    template = "admin/atb/text_input_filter.html"

    def __init__(
        self,
        field: models.Field,
        request: HttpRequest,
        params: dict[str, list[str]],
        model: type[models.Model],
        model_admin: admin.ModelAdmin,
        field_path: str,
    ) -> None:
        self.parameter_name = field_path
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name]

    @property
    def value(self) -> str:
        return self.param(self.parameter_name)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value:
            return queryset
        return queryset.filter(**{self.field_path: self.value})


class DateRangeFilter(_InputFilter):
    """Since/until dates (both inclusive, UTC days): ``field >= since AND field < until + 1 day``.

    Replaces ``date_hierarchy``, which runs ``SELECT DISTINCT`` date queries over the table.
    Use as ``list_filter = [("entry_time", DateRangeFilter)]``.
    """

    template = "admin/atb/date_range_filter.html"

    def __init__(
        self,
        field: models.Field,
        request: HttpRequest,
        params: dict[str, list[str]],
        model: type[models.Model],
        model_admin: admin.ModelAdmin,
        field_path: str,
    ) -> None:
        self.since_param = f"{field_path}__since"
        self.until_param = f"{field_path}__until"
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str | None]:
        return [self.since_param, self.until_param]

    @property
    def since(self) -> str:
        return self.param(self.since_param)

    @property
    def until(self) -> str:
        return self.param(self.until_param)

    def _bound(self, value: str, *, next_day: bool) -> date | datetime:
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc
        if next_day:
            day += timedelta(days=1)
        if isinstance(self.field, models.DateTimeField):
            return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
        return day

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.since:
            queryset = queryset.filter(
                **{f"{self.field_path}__gte": self._bound(self.since, next_day=False)}
            )
        if self.until:
            queryset = queryset.filter(
                **{f"{self.field_path}__lt": self._bound(self.until, next_day=True)}
            )
        return queryset


# --- Forms ---------------------------------------------------------------------------------------


class JSONObjectField(forms.JSONField):
    """A JSON object edited as indented text. Invalid JSON or a non-object is a form error.

    ``{}`` is a valid (empty) object; only blank input counts as "no value".
    """

    empty_values = [None, ""]
    default_error_messages = {
        "invalid": "Enter valid JSON.",
        "not_object": "Enter a JSON object ({...}), not a list, string or number.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            forms.Textarea(
                attrs={
                    "rows": 16,
                    "cols": 90,
                    "spellcheck": "false",
                    "style": "font-family: monospace",
                }
            ),
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError as exc:  # "[[[[..." thousands deep: the user's input, not a 500
            raise ValidationError(f"The value {TOO_DEEP}", code="too_deep") from exc

    def bound_data(self, data: Any, initial: Any) -> Any:
        """What a refused form shows again: a value this field refuses as typed, since parsed
        it would exhaust the stack or, holding a lone surrogate, could not be encoded."""
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        if data is not None and not self.disabled and json_refusal(value) is not None:
            return forms.fields.InvalidJSONInput(data)
        return value

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        depth = json_depth(value)
        if depth > JSON_MAX_DEPTH:  # a row written before nesting was limited: too deep to show
            return (
                f"(Not shown: the stored value nests {depth} levels deep, deeper than the "
                f"{JSON_MAX_DEPTH} a JSON value may. Enter a new value to replace it.)"
            )
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=self.encoder)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not isinstance(value, dict):
            raise ValidationError(self.error_messages["not_object"], code="not_object")
        refused = json_refused(value)
        if refused is not None:
            raise ValidationError(refused, code="refused_json")


# --- Read-only admins ----------------------------------------------------------------------------


def _json_display(field_name: str, label: str) -> Callable[[models.Model], SafeString]:
    def display(obj: models.Model) -> SafeString:
        return json_block(getattr(obj, field_name))

    display.short_description = label  # type: ignore[attr-defined]
    display.__name__ = f"{field_name}_json"
    return display


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Data shown, never edited here: no add, change or delete, for anyone.

    List pages: capped count, no full-table count, no facet counts, no action checkboxes.
    Detail pages show every column; JSON columns as indented blocks.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions: Any = None

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        # JSON columns render through a per-field callable, looked up by name on the admin.
        self._detail_fields: list[str] = []
        for field in model._meta.concrete_fields:
            if isinstance(field, models.JSONField):
                name = f"{field.name}_json"
                setattr(self, name, _json_display(field.name, str(field.verbose_name)))
                self._detail_fields.append(name)
            else:
                self._detail_fields.append(field.name)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """Staff's list pages read from a fresh read replica when there is one
        (atb_site/db/replicas.py): nothing here is edited, so nothing needs the primary's
        latest write."""
        parent = super().changelist_view
        return replicas.serve_staff_page(
            request, lambda: self.list_page_response(parent(request, extra_context))
        )

    def list_page_response(self, response: Any) -> Any:
        """A list page's response before it is rendered: an admin may write its content."""
        return response

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or self._detail_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)


class ReadOnlyTabularInline(admin.TabularInline):
    """Child rows listed under their parent, never edited."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or [f.name for f in self.model._meta.concrete_fields]


# --- The site ------------------------------------------------------------------------------------


class AdminSite(admin.AdminSite):
    """Django's admin site, its app list built once per set of permissions and language.

    ``each_context`` lists, on every admin page, the apps and models the user may see: for each
    registered model its admin's permission checks and two ``reverse()`` calls, some fifty a
    page. What it lists follows from the user's permissions alone (every admin here decides by
    them: ``has_perm``, ``has_module_perms`` and constants), the language (names, their order)
    and the URL prefix, so the list built for one user serves any user with the same ones. Each
    caller gets its own copy (Django's views sort and extend theirs). Users of another auth
    backend than ``ModelBackend`` (which could decide otherwise) always get a list of their own.
    """

    app_lists_kept = 256

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._app_lists: OrderedDict[Hashable, list[dict[str, Any]]] = OrderedDict()

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> Any:
        key = self.app_list_key(request) if app_label is None else None
        if key is None:
            return super().get_app_list(request, app_label)
        kept = self._app_lists.get(key)
        if kept is None:
            kept = super().get_app_list(request)
            self._app_lists[key] = kept
            while len(self._app_lists) > self.app_lists_kept:
                self._app_lists.popitem(last=False)
        return [
            {
                **app,
                "models": [{**model, "perms": dict(model["perms"])} for model in app["models"]],
            }
            for app in kept
        ]

    def app_list_key(self, request: HttpRequest) -> Hashable | None:
        """What the app list depends on, or None when that cannot be told from the user."""
        user = getattr(request, "user", None)
        if not isinstance(user, User | AnonymousUser):
            return None
        if any(type(backend) is not ModelBackend for backend in get_backends()):
            return None
        if not user.is_active:
            perms: Hashable = "inactive"  # no permission at all, whatever is granted
        elif user.is_superuser:
            perms = "superuser"  # every permission
        else:  # the set has_perm reads (read once a request, kept on the user)
            perms = frozenset(user.get_all_permissions())
        return (perms, get_language(), get_script_prefix(), len(self._registry))
