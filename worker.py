"""Entry point for ``celery -A worker worker``: it imports the app, nothing else."""

from dispatcher.celery_app import app

__all__ = ["app"]
