"""The OpenAPI schema and its Swagger UI: staff only, served from our own static files."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue().startswith("openapi: 3.0.3")


def test_schema_and_docs_are_staff_only(bot_client: APIClient, staff_client: APIClient) -> None:
    for url in ("/api/schema/", "/api/docs/"):
        assert APIClient().get(url).status_code == 401
        assert bot_client.get(url).status_code == 403
        assert staff_client.get(url).status_code == 200


def test_swagger_ui_comes_from_our_static_files(admin_client_logged_in: Client) -> None:
    html = admin_client_logged_in.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
