"""The Swagger UI (/api/docs/): staff only, as the schema it shows. A visitor with no
credentials at all is a person at a browser: sent to the login page (then back here), not
given a bare 401. A bot's token, or a user without the staff flag, still gets its 403."""

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated


class SwaggerPage(SpectacularSwaggerView):
    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)
