"""The Celery application; the pipeline's tasks register on it."""

from __future__ import annotations

from celery import Celery

from dispatcher.settings import get_settings

app = Celery("dispatcher", broker=get_settings().broker_url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)
