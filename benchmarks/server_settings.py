"""Settings of the gunicorn that serves the data set to the bench's read operations.

Production settings, except that static files are served from the source folders by whitenoise
(``WHITENOISE_USE_FINDERS``) with plain names, so the admin and the dashboard render without a
``collectstatic`` build step first. Pages and API answers are produced exactly as in production.
"""

from atb_site.settings.base import *  # noqa: F403
from atb_site.settings.base import STORAGES
from benchmarks.server_settings_static import PLAIN_STATICFILES

STORAGES = {**STORAGES, "staticfiles": PLAIN_STATICFILES}
WHITENOISE_USE_FINDERS = True
