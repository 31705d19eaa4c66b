"""Celery on Redis: the app, the publisher, the journal, queues and the broker guard."""
