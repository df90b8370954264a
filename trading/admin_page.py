"""A trading admin list page written in one pass: the HTML Django's admin templates write for
it (admin/base.html, admin/base_site.html, our admin/trading/change_list.html over Django's
admin/change_list.html, our admin/pagination.html, and the inclusion tags between them),
without rendering some three hundred template nodes on every page.

Only a page of the kind the trading admin's read-only lists are is written here: not a
popup, no actions, no formset, no search box, no date hierarchy, no add button, no extra
context, the nav sidebar on, the templates found being the ones copied here and the context
processors the project's. Any other page is rendered by its templates, as before.
tests/test_admin_pages.py compares whole pages with Django's (two languages, a right-to-left
one, filters, messages, a clerk, time zones).

The pieces already written in one pass are used as the templates use them: the rows and
their table (``trading.admin_rows``, ``trading.admin_html``), the filters and the kept
sidebar (``trading.templatetags.trading_admin``).
"""

from datetime import datetime
from html import escape as html_escape
from typing import Any

from django.conf import settings
from django.contrib.admin.templatetags.admin_list import (
    pagination,
    result_list,
)
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.messages import get_messages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.forms import Media
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.context import make_context
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.test.signals import template_rendered
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, formats, timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData
from django.utils.text import capfirst
from django.utils.translation import gettext

from trading import admin_html
from trading.templatetags.trading_admin import (
    RESULTS_TEMPLATE,
    fast_list_filter,
    kept_sidebar,
    results_templates,
    written_result_list,
)

# Each template the page is copied from, and where it must be found.
COPIED = {
    "admin/base_site.html": (),
    "admin/base.html": (),
    "admin/color_theme_toggle.html": (),
    "admin/change_list.html": (),
}
# The context processors whose variables the copied templates may read (and no other).
PROCESSORS = frozenset(
    {
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    }
)
OUR_LIST = "admin/trading/change_list.html"
OUR_PAGINATION = "admin/pagination.html"

_STATIC: dict[str, str] = {}


def _static(path: str) -> str:
    """``{% static path %}``, as the tag writes it (escaped); found once per process."""
    url = _STATIC.get(path)
    if url is None:
        url = _STATIC[path] = str(conditional_escape(static(path)))
    return url


_MEDIA: dict[tuple[str, str], str] = {}


def _media(media: Media, kind: str) -> str:
    """``{{ media.css }}`` or ``{{ media.js }}``: written once per process for the same lists
    of files (the ordering merge and each file's static URL are the same each time)."""
    key = (kind, repr((getattr(media, "_css_lists", None), getattr(media, "_js_lists", None))))
    html = _MEDIA.get(key)
    if html is None:
        html = _MEDIA[key] = str(media[kind].__html__())
    return html


@receiver(setting_changed, dispatch_uid="trading_admin_page_forget_static")
def forget_static(sender: Any, **kwargs: Any) -> None:
    _STATIC.clear()
    _MEDIA.clear()


def _t(message: str) -> str:
    """``{% translate message %}``."""
    return html_escape(gettext(message))


def _e(value: Any) -> str:
    """``{{ value }}``."""
    if type(value) is str:
        return html_escape(value)
    return str(conditional_escape(formats.localize(value)))


def _url(name: str, request: HttpRequest, **kwargs: Any) -> str:
    """``{% url name ... %}``."""
    current_app = getattr(request, "current_app", None)
    return html_escape(reverse(name, kwargs=kwargs or None, current_app=current_app))


def _capfirst(value: Any) -> str:
    """``{{ value|capfirst }}``."""
    text = str(value)
    shown = capfirst(text) or ""
    return shown if isinstance(text, SafeData) else html_escape(shown)


def _processors() -> frozenset[str]:
    options: Any = settings.TEMPLATES[0].get("OPTIONS", {}) if settings.TEMPLATES else {}
    return frozenset(options.get("context_processors", []))


def _template_names(response: TemplateResponse) -> list[str] | None:
    names = response.template_name
    if isinstance(names, str):
        return [names]
    if isinstance(names, list | tuple) and all(isinstance(name, str) for name in names):
        return list(names)
    return None


def writable(response: TemplateResponse, context: dict[str, Any]) -> bool:
    """Whether this module writes the page ``response`` would render."""
    cl = context.get("cl")
    if (
        cl is None
        or len(settings.TEMPLATES) != 1
        or not _processors() <= PROCESSORS
        or context.get("is_popup")
        or not context.get("is_nav_sidebar_enabled")
        or not context.get("has_permission")
        or context.get("has_add_permission")
        or context.get("action_form") is not None
        or context.get("subtitle")
        or cl.formset
        or cl.search_fields
        or cl.date_hierarchy
        or cl.add_facets
        or cl.is_facets_optional
    ):
        return False
    known = {
        "module_name",
        "selection_note",
        "selection_note_all",
        "title",
        "subtitle",
        "is_popup",
        "to_field",
        "cl",
        "media",
        "has_add_permission",
        "opts",
        "action_form",
        "actions_on_top",
        "actions_on_bottom",
        "actions_selection_counter",
        "preserved_filters",
        "site_title",
        "site_header",
        "site_url",
        "has_permission",
        "available_apps",
        "is_nav_sidebar_enabled",
        "log_entries",
    }
    if not set(context) <= known:  # extra context a template might read
        return False
    opts = cl.opts
    names = _template_names(response)
    if not names or not admin_html.template_is(names, OUR_LIST):
        return False
    pages = [
        f"admin/{opts.app_label}/{opts.model_name}/pagination.html",
        f"admin/{opts.app_label}/pagination.html",
        "admin/pagination.html",
    ]
    if not admin_html.template_is(pages, OUR_PAGINATION):
        return False
    tools = [
        f"admin/{opts.app_label}/{opts.model_name}/change_list_object_tools.html",
        f"admin/{opts.app_label}/change_list_object_tools.html",
    ]
    search = [
        f"admin/{opts.app_label}/{opts.model_name}/search_form.html",
        f"admin/{opts.app_label}/search_form.html",
    ]
    return (
        all(admin_html.django_template(name) for name in COPIED)
        and admin_html.django_template("admin/change_list_object_tools.html", tools)
        and admin_html.django_template("admin/search_form.html", search)
    )


def list_page(response: TemplateResponse) -> str | None:
    """The page ``response`` renders, written here; None when it is not one this writes."""
    context = response.context_data
    if not isinstance(context, dict) or not writable(response, context):
        return None
    request = response._request
    cl = context["cl"]
    opts = cl.opts
    user: Any = request.user
    language = translation.get_language()
    bidi = translation.get_language_bidi()
    token = get_token(request)
    csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{html_escape(token)}">'
    media = context["media"]
    index = _url("admin:index", request)
    out: list[str] = []
    w = out.append
    title = f"{_e(context['title'])} | {_e(context['site_title'] or gettext('Django site admin'))}"
    w(f'<!DOCTYPE html>\n\n<html lang="{_e(language or "en-us")}" dir="')
    w("rtl" if bidi else "ltr")
    w(f'">\n<head>\n<title>{title}</title>\n')
    w(f'<link rel="stylesheet" href="{_static("admin/css/base.css")}">\n\n')
    w(f'  <link rel="stylesheet" href="{_static("admin/css/dark_mode.css")}">\n')
    w(f'  <script src="{_static("admin/js/theme.js")}"></script>\n\n\n')
    w(f'  <link rel="stylesheet" href="{_static("admin/css/nav_sidebar.css")}">\n')
    w(f'  <script src="{_static("admin/js/nav_sidebar.js")}" defer></script>\n\n')
    w(f'\n  \n  <link rel="stylesheet" href="{_static("admin/css/changelists.css")}">\n  \n  \n')
    w(f"  {_media(media, 'css')}\n  ")
    if not context.get("actions_on_top") and not context.get("actions_on_bottom"):
        w(
            "\n    <style>\n      #changelist table thead th:first-child {width: inherit}\n"
            "    </style>\n  "
        )
    w("\n\n")
    if bidi:
        w(f'<link rel="stylesheet" href="{_static("admin/css/rtl.css")}">')
    w(f"\n\n\n{_media(media, 'js')}\n")
    w(f'<script src="{_static("admin/js/filters.js")}" defer></script>\n\n\n')
    w('    <meta name="viewport" content="width=device-width, initial-scale=1.0">\n')
    w(f'    <link rel="stylesheet" href="{_static("admin/css/responsive.css")}">\n    ')
    if bidi:
        w(f'<link rel="stylesheet" href="{_static("admin/css/responsive_rtl.css")}">')
    w('\n\n<meta name="robots" content="NONE,NOARCHIVE">\n</head>\n\n')
    w(f'<body class=" app-{_e(opts.app_label)} model-{_e(opts.model_name)} change-list"\n')
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    offset = dateformat.format(datetime.now(tz=zone), "Z")
    w(f'  data-admin-utc-offset="{_e(offset)}">\n')
    w(f'<a href="#content-start" class="skip-to-content-link">{_t("Skip to main content")}</a>\n')
    w('<!-- Container -->\n<div id="container">\n\n    \n    <!-- Header -->\n    \n')
    w('      <header id="header">\n        <div id="branding">\n        \n')
    header = context["site_header"] or gettext("Django administration")
    w(f'<div id="site-name"><a href="{index}">{_e(header)}</a></div>\n')
    if user.is_anonymous:
        w(f"\n  {_theme_toggle()}\n")
    w("\n\n        </div>\n        \n        \n")
    w('        <div id="user-tools">\n            \n')
    w(f"                {_t('Welcome,')}\n")
    name = user.get_short_name() or user.get_username()
    w(f"                <strong>{_e(name)}</strong>.\n            \n            \n                ")
    if context.get("site_url"):
        site = _e(context["site_url"])
        w(f'\n                    <a href="{site}">{_t("View site")}</a> /\n                ')
    w("\n                ")
    if user.is_active and user.is_staff:
        w("\n                    \n                    ")
        try:
            docs = _url("django-admindocs-docroot", request)
        except NoReverseMatch:
            docs = ""
        if docs:
            w(f'\n                        <a href="{docs}">{_t("Documentation")}</a> /\n')
            w("                    ")
        w("\n                ")
    w("\n                ")
    if user.has_usable_password():
        password = _url("admin:password_change", request)
        w(f'\n                <a href="{password}">{_t("Change password")}</a> /\n')
        w("                ")
    logout = _url("admin:logout", request)
    w(f'\n                <form id="logout-form" method="post" action="{logout}">\n')
    w(f"                    {csrf}\n")
    w(f'                    <button type="submit">{_t("Log out")}</button>\n')
    w("                </form>\n")
    w(f"                {_theme_toggle()}\n            \n        </div>\n")
    w("        \n        \n        \n")
    w("      </header>\n    \n    <!-- END Header -->\n    \n")
    w(f'      <nav aria-label="{_t("Breadcrumbs")}">\n        \n<div class="breadcrumbs">\n')
    w(f'<a href="{index}">{_t("Home")}</a>\n')
    app = _url("admin:app_list", request, app_label=cl.opts.app_label)
    w(f'&rsaquo; <a href="{app}">{_e(cl.opts.app_config.verbose_name)}</a>\n')
    w(f"&rsaquo; {_capfirst(cl.opts.verbose_name_plural)}\n</div>\n\n      </nav>\n    \n    \n\n")
    w('    <div class="main" id="main">\n      \n        \n          ')
    w(kept_sidebar(request, context["available_apps"], lambda: make_context(context, request)))
    w('\n        \n      \n      <main id="content-start" class="content" tabindex="-1">\n')
    w("        \n")
    w("          ")
    messages = get_messages(request)
    if messages:
        w('\n            <ul class="messagelist">')
        for message in messages:
            tags = message.tags
            shown = f' class="{_e(tags)}"' if tags else ""
            w(f"\n              <li{shown}>{_capfirst(message)}</li>\n            ")
        w("</ul>\n          ")
    w('\n        \n        <!-- Content -->\n        <div id="content" class="">\n          \n')
    w(f"          <h1>{_e(context['title'])}</h1>\n          \n          \n")
    w('  <div id="content-main">\n    \n        <ul class="object-tools">\n          \n')
    w("            \n\n\n  \n\n\n          \n        </ul>\n    \n    \n")
    filtered = " filtered" if cl.has_filters else ""
    w(f'    <div class="module{filtered}" id="changelist">\n')
    w('      <div class="changelist-form-container">\n        \n\n\n        \n\n')
    w(f'        <form id="changelist-form" method="post" novalidate>{csrf}\n        \n\n        \n')
    w(f"          \n          {_results(cl)}\n          \n        \n        ")
    w(_pagination(cl))
    w("\n        </form>\n      </div>\n      \n")
    w(_filters(cl))
    w('\n    </div>\n  </div>\n\n          \n          <br class="clear">\n        </div>\n')
    w("        <!-- END Content -->\n      </main>\n    </div>\n")
    w('    <footer id="footer"></footer>\n</div>\n<!-- END Container -->\n\n')
    w(SVGS)
    _tell_listeners(response, context)
    return "".join(out)


def _tell_listeners(response: TemplateResponse, context: dict[str, Any]) -> None:
    """Send ``template_rendered`` as a rendering of the page's template sends it under the test
    runner's instrumented rendering (Django's test client reads a response's context and
    templates from it); no one listens outside tests."""
    if template_rendered.has_listeners():
        names = _template_names(response) or []
        template = select_template(names).template
        bound = make_context(context, response._request)
        template_rendered.send(sender=template, template=template, context=bound)


def _theme_toggle() -> str:
    return (
        '\n<button class="theme-toggle">\n'
        '  <span class="visually-hidden theme-label-when-auto">'
        f"{_t('Toggle theme (current theme: auto)')}</span>\n"
        '  <span class="visually-hidden theme-label-when-light">'
        f"{_t('Toggle theme (current theme: light)')}</span>\n"
        '  <span class="visually-hidden theme-label-when-dark">'
        f"{_t('Toggle theme (current theme: dark)')}</span>\n"
        '  <svg aria-hidden="true" class="theme-icon-when-auto">\n'
        '    <use xlink:href="#icon-auto" />\n  </svg>\n'
        '  <svg aria-hidden="true" class="theme-icon-when-dark">\n'
        '    <use xlink:href="#icon-moon" />\n  </svg>\n'
        '  <svg aria-hidden="true" class="theme-icon-when-light">\n'
        '    <use xlink:href="#icon-sun" />\n  </svg>\n</button>\n'
    )


def _results(cl: Any) -> str:
    """``{% fast_result_list cl %}``: the table written in one pass, else its template."""
    written = written_result_list(cl)
    if written is not None:
        return written
    template = select_template([*results_templates(cl), RESULTS_TEMPLATE])
    return str(template.render({**result_list(cl), "opts": cl.opts}))


def _pagination(cl: Any) -> str:
    """``{% pagination cl %}`` with our admin/pagination.html."""
    data = pagination(cl)
    out = ["\n\n\n"]
    out.append('<p class="paginator">\n')
    if data["pagination_required"]:
        out.append("\n")
        paginator = cl.paginator
        for i in data["page_range"]:
            out.append("\n    ")
            if i == paginator.ELLIPSIS:
                out.append(f"{_e(paginator.ELLIPSIS)} ")
            elif i == cl.page_num:
                out.append(f'<span class="this-page">{_e(i)}</span> ')
            else:
                end = ' class="end"' if i == paginator.num_pages else ""
                link = _e(cl.get_query_string({PAGE_VAR: i}))
                out.append(f'<a href="{link}"{end}>{_e(i)}</a> ')
            out.append("\n")
        out.append("\n")
    out.append("\n")
    count = _e(cl.result_count)
    if cl.paginator.is_capped:
        out.append(f'<span class="atb-count-capped">{_t("more than")} {count}</span>')
    else:
        out.append(count)
    name = cl.opts.verbose_name if cl.result_count == 1 else cl.opts.verbose_name_plural
    out.append(f" {_e(name)}\n")
    if data["show_all_url"]:
        out.append(f'<a href="{_e(data["show_all_url"])}" class="showall">{_t("Show all")}</a>')
    out.append("\n\n</p>\n")
    return "".join(out)


def _filters(cl: Any) -> str:
    """Our change_list.html's filters block."""
    if not cl.has_filters:
        return "        \n      "
    out = [
        "        \n          "
        '<nav id="changelist-filter" aria-labelledby="changelist-filter-header">\n'
        f'            <h2 id="changelist-filter-header">{_t("Filter")}</h2>\n            '
    ]
    if cl.has_active_filters:
        out.append(
            '<div id="changelist-filter-extra-actions">\n              \n              <h3>\n'
            f'                <a href="{_e(cl.clear_all_filters_qs)}">&#10006; '
            f"{_t('Clear all filters')}</a>\n              </h3>\n            </div>"
        )
    out.append("\n            ")
    out.extend(str(fast_list_filter(cl, spec)) for spec in cl.filter_specs)
    out.append("\n          </nav>\n        \n      ")
    return "".join(out)


def _svgs() -> str:
    """base.html's end, from its SVGs on, as it stands in Django's template (no tag in it)."""
    source = (admin_html.DJANGO_ADMIN / "admin/base.html").read_text(encoding="utf-8")
    start = source.index("<!-- SVGs -->")
    end = source.index("{% block extrabody %}")
    return source[start:end] + "\n</body>\n</html>\n"


SVGS = _svgs()
