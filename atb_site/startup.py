"""A production start-up error is one line, not a traceback.

The settings refuse to load without what production needs (``DJANGO_SECRET_KEY``, a database
URL): they raise ImproperlyConfigured with a message that says what to set. ``manage.py``,
gunicorn (gunicorn.conf.py) and the Celery programs (the app's ``on_configure``) load the
settings through ``settings_or_exit`` first, so such an error ends the program with that
message on one line of stderr and exit status 1.
"""

import os
import sys
from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured


def refuse(program: str, message: str) -> NoReturn:
    """End start-up with ``<program>: configuration error: <message>`` on one line of stderr
    and exit status 1."""
    line = " ".join(message.split())
    sys.stderr.write(f"{program}: configuration error: {line}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def settings_or_exit(program: str) -> None:
    """Load the settings; on ImproperlyConfigured (or a value the settings could not read),
    ``refuse``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atb_site.settings.base")
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading a setting loads the settings module
    except (ImproperlyConfigured, ValueError) as exc:
        refuse(program, str(exc))
