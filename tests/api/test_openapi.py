"""The OpenAPI schema and its Swagger UI: staff only, served from our own static files."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
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
        assert bot_client.get(url).status_code == 403
        assert staff_client.get(url).status_code == 200
    assert APIClient().get("/api/schema/").status_code == 401


def test_an_anonymous_visitor_of_the_docs_is_sent_to_the_login_page_and_back(
    staff_user: User,
) -> None:
    browser = Client()
    response = browser.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/api/docs/"
    login = browser.post(
        "/admin/login/?next=/api/docs/",
        {"username": "analyst", "password": "pw", "next": "/api/docs/"},
    )
    assert login.status_code == 302 and login["Location"] == "/api/docs/"
    assert browser.get("/api/docs/").status_code == 200


def test_a_signed_in_user_without_the_staff_flag_gets_a_403_not_a_loop(db: None) -> None:
    browser = Client()
    browser.force_login(User.objects.create_user("visitor", password="pw"))
    assert browser.get("/api/docs/").status_code == 403


def test_the_site_root_and_the_admins_view_site_lead_to_the_dashboard(
    admin_client_logged_in: Client,
) -> None:
    root = Client().get("/")
    assert root.status_code == 302 and root["Location"] == "/dashboard/"
    admin_index = admin_client_logged_in.get("/admin/").content.decode()
    assert '<a href="/dashboard/">View site</a>' in admin_index


def test_swagger_ui_comes_from_our_static_files(admin_client_logged_in: Client) -> None:
    html = admin_client_logged_in.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
