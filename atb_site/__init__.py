"""Project package: settings, URLs, WSGI/ASGI and the Celery app. Nothing domain-specific."""

from .celery import app as celery_app

__all__ = ("celery_app",)
