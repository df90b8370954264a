"""Tags of the trading admin's list pages (templates/admin/trading/change_list.html).

``{% fast_result_list cl %}``: the admin's ``{% result_list cl %}``, its rows written in one
pass by ``trading.admin_rows`` (Django's own rows when the page is not one it writes).

``{% nav_sidebar %}``: ``{% include "admin/nav_sidebar.html" %}``, kept once written for the
inputs it is written from (the language, the page's path and the apps and models the user may
see, as ``each_context`` lists them for every page anyway): the same HTML, without rendering
some twenty-six models' rows of template again on every page.

``{% fast_list_filter cl spec %}``: the admin's ``{% admin_list_filter cl spec %}``, a filter drawn
with admin/filter.html (a link per choice: the bot filter's hundred bots) written in one pass,
the same HTML; any other filter drawn by its own template.
"""

import hashlib
from collections import OrderedDict
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import (
    admin_list_filter,
    result_headers,
    result_list,
)
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.views.main import ChangeList
from django.template.base import render_value_in_context
from django.template.context import Context
from django.utils.encoding import iri_to_uri
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.translation import get_language, gettext

from trading.admin_rows import fast_results

register = template.Library()

_SIDEBARS: "OrderedDict[str, SafeString]" = OrderedDict()
_SIDEBARS_KEPT = 512


@register.simple_tag(takes_context=True)
def nav_sidebar(context: Context) -> SafeString:
    request = context.get("request")
    key = _sidebar_key(
        get_language(), getattr(request, "path", ""), context.get("available_apps") or []
    )
    html = _SIDEBARS.get(key)
    if html is None:
        engine = context.template.engine if context.template is not None else None
        if engine is None:
            return SafeString("")
        html = mark_safe(engine.get_template("admin/nav_sidebar.html").render(context))  # noqa: S308
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
    rows = fast_results(cl)
    if rows is None:
        return result_list(cl)
    # result_list(cl) with the rows written here (no hidden fields: no editable list).
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": [],
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": rows,
    }


@register.tag(name="fast_result_list")
def fast_result_list_tag(parser: Any, token: Any) -> InclusionAdminNode:
    # django-stubs know InclusionAdminNode without its func and template_name.
    return InclusionAdminNode(  # type: ignore[call-arg]
        parser,
        token,
        func=fast_result_list,
        template_name="change_list_results.html",
        takes_context=False,
    )


FILTER_TEMPLATE = "admin/filter.html"


@register.simple_tag
def fast_list_filter(cl: ChangeList, spec: Any) -> SafeString:
    if spec.template != FILTER_TEMPLATE:
        return admin_list_filter(cl, spec)  # type: ignore[no-any-return]
    # admin/filter.html, as Template.render({"title": ..., "choices": ..., "spec": ...}) writes it.
    context = Context()
    title = render_value_in_context(spec.title, context)
    by = gettext(" By %(filter_title)s ") % {"filter_title": title}
    out = [f'\n<details data-filter-title="{title}" open>\n  <summary>\n    {by}\n']
    out.append("  </summary>\n  <ul>\n  ")
    for choice in spec.choices(cl):
        query = choice["query_string"]
        href = iri_to_uri(str(query))
        href = conditional_escape(mark_safe(href) if isinstance(query, SafeData) else href)  # noqa: S308
        display = render_value_in_context(choice["display"], context)
        selected = ' class="selected"' if choice["selected"] else ""
        out.append(f'\n    <li{selected}>\n    <a href="{href}">{display}</a></li>\n  ')
    out.append("\n  </ul>\n</details>\n")
    return mark_safe("".join(out))  # noqa: S308
