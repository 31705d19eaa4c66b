"""Thin Celery tasks and the worker's bootstrap."""
