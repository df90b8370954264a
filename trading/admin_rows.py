"""The rows of a read-only admin list page, written in one pass: the HTML Django's admin writes
(``items_for_result``), without its per-cell lookups.

Django's admin works out, for every cell of every row, what the column is (``lookup_field``),
how to show it (``display_for_field``, which fetches the locale's formats again), and builds
the cell with ``format_html``. Here each column is worked out once per page: a cell is then a
formatter call and an escape. A page whose columns are not all plain model fields (a callable,
an action checkbox, an editable field, a popup) is left to Django.

Formatting is Django's own, with the locale's formats fetched once per page: a decimal
as ``number_format(value, decimal_places)`` gives it (here ``'{:f}'`` when no grouping applies
and the value carries exactly the column's places, which is what a ``numeric(p, s)`` column
gives), a time as ``localize(template_localtime(value))`` (its time zone looked up once), a
choice by its label, a foreign key as ``str()`` of the related row (a bot: its key, the row's own
value), anything else as ``display_for_value``. A page whose columns are all values of the row
itself reads them as tuples, not model instances. tests/test_admin_rows.py compares the HTML
with Django's for every list the trading admin shows.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import quote as url_quote

from django.conf import settings
from django.contrib.admin.templatetags.admin_list import ResultList
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, quote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import numberformat, timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.formats import get_format
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeData, SafeString
from django.utils.translation import get_language

from trading.models import Bot

Cell = Callable[[Any], str]
# Per column: whether it links to the row, the opening tag, the formatter, the closing tag, and
# whether what the formatter writes needs no escaping (a number: digits, signs, separators).
Column = tuple[bool, str, Cell, str, bool]
_HTML_SPECIAL = frozenset("&<>\"'")
_PK = "PKPLACEHOLDER"  # letters only: admin's quote() leaves it alone
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"  # what reverse() leaves unquoted in a path


def fast_results(cl: ChangeList) -> list[ResultList] | None:
    """Each row as one ResultList holding the row's cells as one safe string; None when the
    page is not one this writes (then Django's ``results(cl)`` writes it)."""
    if cl.formset or cl.is_popup or cl.to_field or cl.list_display_links is None:
        return None
    cells = _page_cells(cl)
    if cells is None:
        return None
    link = _link(cl)
    # escape() replaces character by character: the URL's two halves are escaped once, and a
    # whole-number key (digits: nothing for quote() or escape() to change) goes in as it is.
    before, after = (escape(link[0]), escape(link[1])) if link is not None else ("", "")
    rows = []
    for result in cl.result_list:
        parts = []
        for linked, opener, formatter, closer, plain in cells:
            shown = formatter(result)
            text = shown if plain or isinstance(shown, SafeData) else escape(shown)
            if linked and link is not None:
                value = getattr(result, link[2])
                if type(value) is int:
                    key = str(value)
                else:
                    key = escape(url_quote(str(quote(value)), safe=_URL_SAFE))
                parts.append(f'{opener}<a href="{before}{key}{after}">{text}</a>{closer}')
            else:
                parts.append(f"{opener}{text}{closer}")
        rows.append(ResultList(None, [SafeString("".join(parts))]))
    return rows


# Models whose ``str()`` is their primary key: a foreign key to one is shown as its own value
# (tests/test_admin_rows.py compares the cells with Django's, which show ``str()``).
KEY_SHOWN: tuple[type[models.Model], ...] = (Bot,)


def value_rows(cl: ChangeList) -> QuerySet[Any] | None:
    """The page's rows as tuples named by the columns' attnames (and the key's), for
    ``ChangeList.result_list``, instead of model instances (the rows' and their bots': a
    hundred a page): for a page this module writes whose columns are all values of the row
    itself; else None."""
    result_list = cl.result_list
    if (
        not isinstance(result_list, QuerySet)
        or cl.is_popup
        or cl.to_field
        or cl.list_display_links is None
        or cl.list_editable
        or _page_cells(cl) is None
    ):
        return None
    names = [cl.lookup_opts.pk.attname]
    for name in cl.list_display:  # plain fields of the model (_cells says)
        field = cl.lookup_opts.get_field(str(name))
        if not isinstance(field, models.Field) or (field.is_relation and not _shown_by_key(field)):
            return None
        names.append(field.attname)
    return result_list.values_list(*dict.fromkeys(names), named=True)


def _shown_by_key(field: Any) -> bool:
    return (
        isinstance(field, models.ForeignKey)
        and field.related_model in KEY_SHOWN
        and field.target_field.primary_key
    )


def _link(cl: ChangeList) -> tuple[str, str, str] | None:
    """The change page's URL around the row's quoted key, with the list's filters kept."""
    opts = cl.opts
    try:
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=(_PK,),
            current_app=cl.model_admin.admin_site.name,
        )
    except NoReverseMatch:
        return None
    url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": opts}, url)
    before, _, after = url.partition(_PK)
    return before, after, cl.lookup_opts.pk.attname


_CELLS = "_atb_cells"  # where a ChangeList keeps its columns, worked out once for the page


def _page_cells(cl: ChangeList) -> list[Column] | None:
    """``_cells(cl)``, worked out once a page: the rows' query (``value_rows``) and their HTML
    (``fast_results``) both ask, in the same request (language, time zone, formats)."""
    if not hasattr(cl, _CELLS):
        setattr(cl, _CELLS, _cells(cl))
    cells: list[Column] | None = getattr(cl, _CELLS)
    return cells


def _cells(cl: ChangeList) -> list[Column] | None:
    """Per column (``Column``); None if a column is not a plain field of the model."""
    links = cl.list_display_links
    empty = cl.model_admin.get_empty_value_display()
    formats = _Formats()
    columns: list[Column] = []
    first = True
    for name in cl.list_display:
        if not isinstance(name, str) or hasattr(cl.model_admin, name):
            return None
        try:
            field = cl.lookup_opts.get_field(name)
        except FieldDoesNotExist:
            return None
        if not isinstance(field, models.Field) or field.column is None:
            return None
        if field.auto_created and not isinstance(field, models.AutoField | models.BigAutoField):
            return None  # an implicit id is shown as its number, as a declared one
        classes = f"field-{name}"
        if isinstance(field, models.DateField | models.TimeField | models.ForeignKey):
            classes += " nowrap"
        linked = (first and not links) or name in links
        tag = "th" if linked and first else "td"
        if linked:
            first = False
        formatter = _formatter(field, empty, formats)
        plain = (
            formats.plain_numbers
            and isinstance(field, models.DecimalField | models.IntegerField)
            and not getattr(field, "flatchoices", None)
            and (isinstance(empty, SafeData) or not _HTML_SPECIAL.intersection(str(empty)))
        )
        columns.append((linked, f'<{tag} class="{classes}">', formatter, f"</{tag}>", plain))
    return columns


class _Formats:
    """The active locale's number and date formats, fetched once for the page."""

    def __init__(self) -> None:
        lang = get_language()
        self.decimal_sep = str(get_format("DECIMAL_SEPARATOR", lang, use_l10n=True))
        self.grouping = get_format("NUMBER_GROUPING", lang, use_l10n=True)
        self.thousand_sep = str(get_format("THOUSAND_SEPARATOR", lang, use_l10n=True))
        self.grouped = bool(settings.USE_THOUSAND_SEPARATOR) and self.grouping != 0
        # A number is written with digits, a sign, an exponent, NaN or Infinity and these
        # separators: nothing to escape unless a separator holds what escape() changes.
        separators = self.decimal_sep + (self.thousand_sep if self.grouped else "")
        self.plain_numbers = not _HTML_SPECIAL.intersection(separators)
        self.moments = _Moments(str(get_format("DATETIME_FORMAT", lang, use_l10n=True)))
        self.zone = timezone.get_current_timezone() if settings.USE_TZ else None

    def local(self, value: Any) -> Any:
        """``timezone.template_localtime(value)``, the current time zone looked up once."""
        if (
            self.zone is not None
            and isinstance(value, datetime)
            and value.utcoffset() is not None
            and getattr(value, "convert_to_local_time", True)
        ):
            return value.astimezone(self.zone)
        return value

    def number(self, value: Any, places: int | None = None) -> str:
        if (
            places is not None
            and isinstance(value, Decimal)
            and not self.grouped
            and value.is_finite()
            and places > 0
            and (parts := value.as_tuple()).exponent == -places
            and len(parts.digits) <= 190
        ):
            # numberformat.format's own steps, when the value has the column's places.
            text = f"{value:f}"
            return text if self.decimal_sep == "." else text.replace(".", self.decimal_sep)
        return str(
            numberformat.format(
                value,
                self.decimal_sep,
                places,
                self.grouping,
                self.thousand_sep,
                force_grouping=False,
                use_l10n=True,
            )
        )


def _formatter(field: "models.Field[Any, Any]", empty: str, formats: _Formats) -> Cell:
    name, attname = field.name, field.attname
    if _shown_by_key(field):

        def key(row: Any) -> str:
            value = getattr(row, attname)
            return empty if value is None else str(value)

        return key
    if isinstance(field, models.ForeignKey):

        def related(row: Any) -> str:
            if getattr(row, attname) is None:
                return empty
            return str(getattr(row, name))

        return related
    if getattr(field, "flatchoices", None):
        labels = {value: str(label) for value, label in field.flatchoices}

        def choice(row: Any) -> str:
            value = getattr(row, attname)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            try:
                return labels.get(value, empty)
            except TypeError:  # an unhashable value: Django's own way
                return str(display_for_field(value, field, empty))

        return choice
    empty_values = field.empty_values
    if isinstance(field, models.DateTimeField):
        moments = formats.moments

        def moment(row: Any) -> str:
            value = getattr(row, attname)
            if value in empty_values:
                return empty
            return moments.format(formats.local(value))

        return moment
    if isinstance(field, models.DecimalField):
        places = field.decimal_places

        def decimal(row: Any) -> str:
            value = getattr(row, attname)
            # (a Decimal equals none of the empty values: no comparisons for one)
            if type(value) is not Decimal and value in empty_values:
                return empty
            return formats.number(value, places)

        return decimal
    if isinstance(field, models.IntegerField):

        def integer(row: Any) -> str:
            value = getattr(row, attname)
            if value in empty_values:
                return empty
            return str(value) if not formats.grouped else formats.number(value)

        return integer

    if isinstance(field, models.CharField | models.TextField):

        def text(row: Any) -> str:  # display_for_field's steps for text
            value = getattr(row, attname)
            if value in empty_values or (isinstance(value, str) and value.strip() == ""):
                return empty
            return str(value)

        return text

    def other(row: Any) -> str:
        value = getattr(row, attname)
        if isinstance(value, str) and value.strip() == "":
            value = ""
        return str(display_for_field(value, field, empty))

    return other


# Pieces of a date format that depend on one part of the time only: worked out once a page per
# value of that part (the translated ones: month and day names, a.m./p.m.), or plain numbers.
_BY_PART: dict[str, Callable[[datetime], Any]] = {
    **dict.fromkeys("NFMbE", lambda m: m.month),
    **dict.fromkeys("Dl", lambda m: m.weekday()),
    **dict.fromkeys("aA", lambda m: m.hour > 11),
    "T": lambda m: (m.tzinfo, m.utcoffset()),  # the zone's name ("UTC"), by zone and offset
}
_NUMBERS: dict[str, Callable[[datetime], str]] = {
    "j": lambda m: str(m.day),
    "d": lambda m: f"{m.day:02d}",
    "n": lambda m: str(m.month),
    "m": lambda m: f"{m.month:02d}",
    "Y": lambda m: f"{m.year:04d}",
    "G": lambda m: str(m.hour),
    "H": lambda m: f"{m.hour:02d}",
    "g": lambda m: str(m.hour % 12 or 12),
    "h": lambda m: f"{m.hour % 12 or 12:02d}",
    "i": lambda m: f"{m.minute:02d}",
    "s": lambda m: f"{m.second:02d}",
}


class _Moments:
    """``dateformat.format(value, pattern)`` for many values: the pattern split once, and
    translated pieces looked up once per value of what they depend on."""

    def __init__(self, pattern: str) -> None:
        self.pieces: list[tuple[bool, str]] = []
        for i, piece in enumerate(re_formatchars.split(pattern)):
            if i % 2:
                self.pieces.append((True, piece))
            elif piece:
                self.pieces.append((False, re_escaped.sub(r"\1", piece)))
        self.memo: dict[tuple[str, Any], str] = {}

    def format(self, moment: datetime) -> str:
        out: list[str] = []
        formatter: DateFormat | None = None
        for is_code, piece in self.pieces:
            if not is_code:
                out.append(piece)
            elif piece in _NUMBERS:
                out.append(_NUMBERS[piece](moment))
            elif piece in _BY_PART or piece == "P":
                out.append(self._by_part(piece, moment))
            else:
                formatter = formatter or DateFormat(moment)
                out.append(str(getattr(formatter, piece)()))
        return "".join(out)

    def _by_part(self, piece: str, moment: datetime) -> str:
        if piece == "P":  # DateFormat.P: midnight, noon, or f() and a()
            if moment.minute == 0 and moment.hour in (0, 12):
                key: tuple[str, Any] = ("P", moment.hour)
            else:
                hour = moment.hour % 12 or 12
                clock = f"{hour}:{moment.minute:02d}" if moment.minute else str(hour)
                return f"{clock} {self._by_part('a', moment)}"
        else:
            key = (piece, _BY_PART[piece](moment))
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = str(getattr(DateFormat(moment), piece)())
        return found
