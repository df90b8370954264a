"""A row whose JSON nests deeper than the API accepts (written before the limit, or by hand)
still has an admin page: it says so instead of failing with a 500."""

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db import connection, models
from django.test import Client

from atb_site.admin_tools import ReadOnlyModelAdmin
from tests.test_admin import admin_url, seeded  # noqa: F401 - the fixture: one row of each

pytestmark = pytest.mark.django_db

DEPTH = 930  # what the audit stored through the API before nesting was limited
JSON_COLUMNS = sorted(
    (
        (model, field.name)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ReadOnlyModelAdmin)
        for field in model._meta.concrete_fields
        if isinstance(field, models.JSONField)
    ),
    key=lambda pair: (pair[0]._meta.label, pair[1]),
)


def column_id(pair: tuple[type[models.Model], str]) -> str:
    return f"{pair[0]._meta.label}.{pair[1]}"


@pytest.fixture
def viewer(db: None) -> User:
    """Staff, not a superuser: may view every model, nothing more."""
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("column", JSON_COLUMNS, ids=column_id)
def test_the_change_page_of_a_row_with_json_930_levels_deep_renders(
    column: tuple[type[models.Model], str], viewer: User
) -> None:
    model, name = column
    obj: Any = model._default_manager.order_by("pk").first()
    table = model._meta.db_table
    field = model._meta.get_field(name)
    assert isinstance(field, models.JSONField)
    db_column = field.column
    deep = "[" * DEPTH + "]" * DEPTH
    with connection.cursor() as cursor:
        # Written straight into the table, past the append-only triggers of the audit tables.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f'UPDATE "{table}" SET "{db_column}" = %s::jsonb WHERE {model._meta.pk.column} = %s',  # noqa: S608
            [deep, obj.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    client = Client()
    client.force_login(viewer)

    page = client.get(admin_url(model, "change", obj.pk))
    listing = client.get(admin_url(model, "changelist"))

    assert page.status_code == 200
    assert "This value nests 930 levels deep; the first 32 are shown." in page.content.decode()
    assert listing.status_code == 200
