"""How the bench serves static files, shared by its gunicorn's settings and its in-process
captures: from the source folders with plain names, so nothing needs ``collectstatic`` first."""

PLAIN_STATICFILES = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
