"""Tags of the trading admin's list pages (templates/admin/trading/change_list.html).

``{% fast_result_list cl %}``: the admin's ``{% result_list cl %}``, its rows written in one
pass by ``trading.admin_rows`` and the table around them by ``trading.admin_html`` (Django's own
rows and template when the page is not one they write).

``{% nav_sidebar %}``: ``{% include "admin/nav_sidebar.html" %}``, kept once written for the
inputs it is written from (the language, the page's path and the apps and models the user may
see, as ``each_context`` lists them for every page anyway): the same HTML, without rendering
some twenty-six models' rows of template again on every page.

``{% fast_list_filter cl spec %}``: the admin's ``{% admin_list_filter cl spec %}``, a filter
drawn with admin/filter.html (a link per choice: the bot filter's hundred bots) or with one of
the typed value filters' templates written in one pass by ``trading.admin_html``, the same HTML;
any other filter drawn by its own template.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import (
    admin_list_filter,
    result_headers,
    result_list,
)
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.views.main import ChangeList
from django.template.context import Context
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from atb_site.admin_tools import DateRangeFilter, TextInputFilter
from trading import admin_html
from trading.admin_rows import fast_results

register = template.Library()

_SIDEBARS: "OrderedDict[str, SafeString]" = OrderedDict()
_SIDEBARS_KEPT = 512


@register.simple_tag(takes_context=True)
def nav_sidebar(context: Context) -> SafeString:
    engine = context.template.engine if context.template is not None else None
    if engine is None:
        return SafeString("")
    apps = context.get("available_apps") or []
    return kept_sidebar(context.get("request"), apps, lambda: context)


def kept_sidebar(
    request: Any, available_apps: list[dict[str, Any]], make_context: Callable[[], Any]
) -> SafeString:
    """admin/nav_sidebar.html rendered with the context ``make_context`` gives (asked for only
    when the sidebar for these inputs is not kept yet)."""
    key = _sidebar_key(get_language(), getattr(request, "path", ""), available_apps)
    html = _SIDEBARS.get(key)
    if html is None:
        sidebar = get_template("admin/nav_sidebar.html").template  # type: ignore[attr-defined]
        html = mark_safe(sidebar.render(make_context()))  # noqa: S308
        _SIDEBARS[key] = html
        while len(_SIDEBARS) > _SIDEBARS_KEPT:
            _SIDEBARS.popitem(last=False)
    return html


def _sidebar_key(language: str, path: str, apps: list[dict[str, Any]]) -> str:
    """Everything admin/nav_sidebar.html and admin/app_list.html read, as a digest."""
    inputs = (
        language,
        path,
        [
            (
                str(app.get("name")),
                app.get("app_label"),
                app.get("app_url"),
                [
                    (
                        str(model.get("name")),
                        model.get("object_name"),
                        model.get("admin_url"),
                        model.get("add_url"),
                        model.get("view_only"),
                    )
                    for model in app.get("models", [])
                ],
            )
            for app in apps
        ],
    )
    return hashlib.sha256(repr(inputs).encode()).hexdigest()


def fast_result_list(cl: ChangeList) -> dict[str, Any]:
    return result_list(cl)  # Django's rows, for a page trading.admin_rows does not write


RESULTS_TEMPLATE = "admin/change_list_results.html"


def results_templates(cl: ChangeList) -> list[str]:
    """The names before Django's admin/change_list_results.html a page's table may come from."""
    opts = cl.opts
    return [
        f"admin/{opts.app_label}/{opts.model_name}/change_list_results.html",
        f"admin/{opts.app_label}/change_list_results.html",
    ]


def written_result_list(cl: ChangeList) -> SafeString | None:
    """The results table written in one pass (trading.admin_html) when the rows are
    (trading.admin_rows) and the template is Django's own; else None (no rows too: Django's
    template, which writes no table)."""
    if admin_html.django_template(RESULTS_TEMPLATE, results_templates(cl)):
        rows = fast_results(cl)
        if rows:
            return admin_html.results_table(list(result_headers(cl)), rows)
    return None


class FastResultListNode(InclusionAdminNode):
    """``{% result_list cl %}``, written in one pass where ``written_result_list`` can."""

    def render(self, context: Context) -> SafeString:
        written = written_result_list(self.args[0].resolve(context))
        return super().render(context) if written is None else written


@register.tag(name="fast_result_list")
def fast_result_list_tag(parser: Any, token: Any) -> InclusionAdminNode:
    # django-stubs know InclusionAdminNode without its func and template_name.
    return FastResultListNode(  # type: ignore[call-arg]
        parser,
        token,
        func=fast_result_list,
        template_name="change_list_results.html",
        takes_context=False,
    )


FILTER_TEMPLATE = "admin/filter.html"


@register.simple_tag
def fast_list_filter(cl: ChangeList, spec: Any) -> SafeString:
    """``{% admin_list_filter cl spec %}``, written in one pass when its template is the one
    trading.admin_html copies."""
    template = spec.template
    if admin_html.django_template(template):
        if template == FILTER_TEMPLATE:
            return admin_html.choices_filter(spec, spec.choices(cl))
        if template == TextInputFilter.template and isinstance(spec, TextInputFilter):
            return admin_html.input_filter(
                spec, list(spec.choices(cl)), admin_html.text_input(spec)
            )
        if template == DateRangeFilter.template and isinstance(spec, DateRangeFilter):
            return admin_html.input_filter(
                spec, list(spec.choices(cl)), admin_html.date_inputs(spec)
            )
    return admin_list_filter(cl, spec)
