"""Admin for the strategy schemas: the JSON Schema each strategy type's configurations must
satisfy, edited by staff as data. Saving goes through ``strategy_schema_save`` (next version,
change record); a schema is never deleted, since configuration versions name the one they
were checked against."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.safestring import SafeString

from atb_site.admin_tools import JSONObjectField, json_block, request_user
from botconfig.models import StrategySchema
from botconfig.services import schema_in_force_failures, strategy_schema_save
from botconfig.validation import schema_check


class StrategySchemaForm(forms.ModelForm):
    reason = forms.CharField(
        label="Reason for the change",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 90}),
        help_text="Kept in the change log with the schema before and after.",
    )

    class Meta:
        model = StrategySchema
        fields = ("strategy_type", "schema")

    def clean_schema(self) -> Any:
        document = self.cleaned_data.get("schema")
        schema_check(document)
        return document

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        strategy_type = cleaned.get("strategy_type") or self.instance.strategy_type
        if "schema" in cleaned and strategy_type:
            failures = schema_in_force_failures(
                strategy_type=strategy_type, document=cleaned["schema"]
            )
            if failures:
                self.add_error("schema", failures)
        return cleaned


@admin.register(StrategySchema)
class StrategySchemaAdmin(admin.ModelAdmin):
    form = StrategySchemaForm
    list_display = ("strategy_type", "version", "updated_at", "updated_by")
    list_select_related = ("updated_by",)
    search_fields = ("strategy_type",)
    ordering = ("strategy_type",)
    formfield_overrides = {models.JSONField: {"form_class": JSONObjectField}}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: StrategySchema | None = None) -> Any:
        if obj is None:
            return ("strategy_type", "schema", "reason")
        if self.has_change_permission(request, obj):
            return ("strategy_type", "version", "updated_at", "updated_by", "schema", "reason")
        return ("strategy_type", "version", "updated_at", "updated_by", "schema_json")

    def get_readonly_fields(self, request: HttpRequest, obj: StrategySchema | None = None) -> Any:
        if obj is None:
            return ()
        return ("strategy_type", "version", "updated_at", "updated_by", "schema_json")

    def save_model(
        self, request: HttpRequest, obj: StrategySchema, form: Any, change: bool
    ) -> None:
        saved = strategy_schema_save(
            strategy_type=obj.strategy_type,
            document=form.cleaned_data["schema"],
            user=request_user(request),
            reason=form.cleaned_data["reason"].strip(),
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.display(description="schema")
    def schema_json(self, schema: StrategySchema) -> SafeString:
        return json_block(schema.schema)
