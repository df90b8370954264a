"""Pieces of the trading admin's list pages written in one pass, each the HTML Django's admin
template writes for it (tests/test_admin_pages.py compares whole pages): the results table
(admin/change_list_results.html), a filter's list of links (admin/filter.html) and the typed
value filters (admin/atb/text_input_filter.html, admin/atb/date_range_filter.html).

A template of the same name put before Django's (in templates/ or an app) is used instead:
``django_template`` tells whether the one found is Django's own (or ours, for the atb ones).
"""

import re
from collections.abc import Iterable
from html import escape as html_escape
from pathlib import Path
from typing import Any

import django.contrib.admin
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import TemplateDoesNotExist
from django.template.base import render_value_in_context
from django.template.context import Context
from django.template.loader import select_template
from django.utils.autoreload import file_changed
from django.utils.encoding import iri_to_uri
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext

DJANGO_ADMIN = Path(django.contrib.admin.__file__).parent / "templates"
_OURS = Path(settings.BASE_DIR) / "templates"


_FOUND: dict[tuple[str, ...], bool] = {}


def django_template(name: str, overrides: Iterable[str] = ()) -> bool:
    """Whether ``name`` (or the first of ``overrides`` found before it) resolves to the file
    these writers copy (Django's, or ours under templates/admin/atb), not to another.

    Found once per process, as the cached template loader finds a template once: the answer
    is forgotten when the autoreloader sees a file change or a test changes the template
    settings (``forget_found``), as Django's loaders and engines forget theirs
    (django/template/autoreload.py, django/test/signals.py)."""
    names = (*overrides, name)
    found = _FOUND.get(names)
    if found is None:
        try:
            origin = select_template(list(names)).origin.name
        except TemplateDoesNotExist:
            found = False
        else:
            home = _OURS if name.startswith("admin/atb/") else DJANGO_ADMIN
            found = str(origin) == str(home / name)
        _FOUND[names] = found
    return found


def template_is(names: list[str], ours: str) -> bool:
    """Whether the first of ``names`` found is our templates/``ours``; found once per process
    as ``django_template``."""
    key = ("ours", ours, *names)
    found = _FOUND.get(key)
    if found is None:
        try:
            origin = select_template(names).origin.name
        except TemplateDoesNotExist:
            found = False
        else:
            found = str(origin) == str(_OURS / ours)
        _FOUND[key] = found
    return found


@receiver(file_changed, dispatch_uid="trading_admin_html_forget_found")
@receiver(setting_changed, dispatch_uid="trading_admin_html_forget_found_settings")
def forget_found(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("setting", "TEMPLATES") in ("TEMPLATES", "INSTALLED_APPS"):
        _FOUND.clear()


def _text(value: Any, context: Context) -> str:
    """``{{ value }}``: a plain string escaped, anything else as the template renders it."""
    if type(value) is str:
        return html_escape(value)
    return render_value_in_context(value, context)


# What iri_to_uri() leaves as it is: quote()'s unreserved characters and the ones it is told
# are safe. A query string urlencode() wrote holds nothing else.
_AS_IS_IN_URI = re.compile(r"[A-Za-z0-9_.\-~/#%\[\]=:;$&()+,!?*@']*")


def _iri(value: Any) -> str:
    """``{{ value|iriencode }}``."""
    if type(value) is str and _AS_IS_IN_URI.fullmatch(value):
        return html_escape(value)  # iri_to_uri() would return it unchanged
    text = iri_to_uri(str(value))
    return conditional_escape(mark_safe(text) if isinstance(value, SafeData) else text)  # noqa: S308


def _by(title: str) -> str:
    """The filters' ``{% blocktranslate %} By {{ filter_title }} {% endblocktranslate %}``."""
    return gettext(" By %(filter_title)s ") % {"filter_title": title}


def choices_filter(spec: Any, choices: Iterable[dict[str, Any]]) -> SafeString:
    """admin/filter.html, as ``Template.render({"title", "choices", "spec"})`` writes it."""
    context = Context()
    title = _text(spec.title, context)
    out = [f'\n<details data-filter-title="{title}" open>\n  <summary>\n    {_by(title)}\n']
    out.append("  </summary>\n  <ul>\n  ")
    for choice in choices:
        selected = ' class="selected"' if choice["selected"] else ""
        out.append(
            f'\n    <li{selected}>\n    <a href="{_iri(choice["query_string"])}">'
            f"{_text(choice['display'], context)}</a></li>\n  "
        )
    out.append("\n  </ul>\n</details>\n")
    return mark_safe("".join(out))  # noqa: S308


def input_filter(spec: Any, choices: list[dict[str, Any]], inputs: str) -> SafeString:
    """admin/atb/text_input_filter.html or date_range_filter.html around their ``inputs``."""
    context = Context()
    title = _text(spec.title, context)
    current = choices[0]
    hidden = "".join(
        f'<input type="hidden" name="{_text(name, context)}" value="{_text(value, context)}">'
        for name, value in current["hidden_params"]
    )
    clear = (
        ""
        if current["selected"]
        else f'<a href="{_iri(current["query_string"])}">{escape(gettext("Clear"))}</a>'
    )
    return mark_safe(  # noqa: S308
        f'\n<details data-filter-title="{title}" open>\n  <summary>\n    {_by(title)}\n'
        "  </summary>\n  \n"
        '  <form method="get" class="atb-input-filter" style="margin: 5px 15px 10px;">\n'
        f"    {hidden}\n{inputs}"
        f'    <input type="submit" value="{escape(gettext("Filter"))}" style="margin-top: 4px;">\n'
        f"    {clear}\n  </form>\n  \n</details>\n"
    )


def text_input(spec: Any) -> str:
    context = Context()
    return (
        f'    <input type="text" name="{_text(spec.parameter_name, context)}" '
        f'value="{_text(spec.value, context)}" aria-label="{_text(spec.title, context)}" '
        'style="width: 100%; box-sizing: border-box;">\n'
    )


def date_inputs(spec: Any) -> str:
    context = Context()
    out = []
    for label, name, value in (
        ("Since", spec.since_param, spec.since),
        ("Until", spec.until_param, spec.until),
    ):
        out.append(
            f'    <label style="display: block;">{escape(gettext(label))}\n'
            f'      <input type="date" name="{_text(name, context)}" '
            f'value="{_text(value, context)}" style="width: 100%; box-sizing: border-box;">\n'
            "    </label>\n"
        )
    return "".join(out)


def results_table(headers: list[dict[str, Any]], rows: list[Any]) -> SafeString:
    """admin/change_list_results.html for rows already written (no hidden fields, no forms)."""
    context = Context()
    sorted_fields = sum(1 for h in headers if h["sortable"] and h["sorted"])
    out = ['\n\n\n<div class="results">\n<table id="result_list">\n<thead>\n<tr>\n']
    for header in headers:
        out.append(f'\n<th scope="col"{_text(header["class_attrib"], context)}>\n   ')
        if header["sortable"] and header["sort_priority"] > 0:
            out.append(
                '\n       <div class="sortoptions">\n'
                f'         <a class="sortremove" href="{_text(header["url_remove"], context)}" '
                f'title="{escape(gettext("Remove from sorting"))}"></a>\n         '
            )
            if sorted_fields > 1:
                priority = _text(header["sort_priority"], context)
                title = gettext("Sorting priority: %(priority_number)s") % {
                    "priority_number": priority
                }
                out.append(f'<span class="sortpriority" title="{title}">{priority}</span>')
            order = "ascending" if header["ascending"] else "descending"
            out.append(
                f'\n         <a href="{_text(header["url_toggle"], context)}" '
                f'class="toggle {order}" title="{escape(gettext("Toggle sorting"))}"></a>\n'
                "       </div>\n   "
            )
        text = header["text"]
        shown = capfirst(str(text))
        label = _text(mark_safe(shown) if isinstance(text, SafeData) else shown, context)  # noqa: S308
        if header["sortable"]:
            link = f'<a href="{_text(header["url_primary"], context)}">{label}</a>'
        else:
            link = f"<span>{label}</span>"
        out.append(f'\n   <div class="text">{link}</div>\n   <div class="clear"></div>\n</th>')
    out.append("\n</tr>\n</thead>\n<tbody>\n")
    for row in rows:
        out.append("\n\n<tr>")
        out.extend(_text(item, context) for item in row)
        out.append("</tr>\n")
    out.append("\n</tbody>\n</table>\n</div>\n\n")
    return mark_safe("".join(out))  # noqa: S308
