"""Admin actions that export the selected rows as CSV or Parquet: the same columns, text and
types as the API's ``?format=csv|parquet`` of that table (``trading.api.exports``), streamed.

For any staff user who may view the list (``permissions=["view"]``); the action is a POST with
Django's CSRF check like every admin action.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from trading.api.exports import export_response
from trading.selectors.exports import export_columns

ExportAction = Callable[[Any, HttpRequest, QuerySet[Any]], StreamingHttpResponse]


def export_actions(
    fields: Sequence[str], *, ordering: Sequence[str], paths: Mapping[str, str] | None = None
) -> tuple[ExportAction, ExportAction]:
    """The two actions (CSV, Parquet) for a list whose rows have ``fields`` (an API output
    serializer's), written in ``ordering``."""

    def export(fmt: str) -> ExportAction:
        def action(
            model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]
        ) -> StreamingHttpResponse:
            model = queryset.model
            name = model._meta.db_table.rsplit(".", 1)[-1].strip('"')
            return export_response(
                queryset,
                export_columns(model, fields, paths),
                ordering=ordering,
                fmt=fmt,
                name=name,
            )

        action.__name__ = f"export_{fmt}"
        label = "CSV" if fmt == "csv" else "Parquet"
        return admin.action(description=f"Export selected as {label}", permissions=["view"])(action)

    return export("csv"), export("parquet")
