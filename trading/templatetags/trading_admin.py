"""``{% fast_result_list cl %}``: the admin's ``{% result_list cl %}``, its rows written in one
pass by ``trading.admin_rows`` (Django's own rows when the page is not one it writes)."""

from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_list
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.views.main import ChangeList

from trading.admin_rows import fast_results

register = template.Library()


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
