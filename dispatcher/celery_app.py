"""The Celery application and its delivery semantics.

Redis has no real acknowledgements: a message taken by a worker sits in an
"unacked" hash and comes back only after the visibility timeout. Three numbers
are therefore tied together here: every countdown is shorter than the
visibility timeout (or the task would run twice), every task ends well within
it, and it is short enough that work of a worker killed outright resumes
within two minutes. Longer waits live in the database and the sweeper.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from dispatcher import broker_guard
from dispatcher.kinds import ALL_QUEUES, MAINTENANCE_QUEUE, Lane, queue_for
from dispatcher.settings import get_settings

broker_guard.install()

VISIBILITY_TIMEOUT = 90
MAX_COUNTDOWN = 60
TASK_TIME_LIMIT = 75
TASK_SOFT_TIME_LIMIT = 65

_settings = get_settings()
_transport_options = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "global_keyprefix": _settings.broker_prefix,
    # A publisher must fail fast, not hang, when Redis is down.
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}

app = Celery("dispatcher", broker=_settings.broker_url, include=["dispatcher.tasks"])
app.conf.update(
    broker_transport_options=_transport_options,
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
    visibility_timeout=VISIBILITY_TIMEOUT,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # At least once from Redis; the database makes it exactly once per
    # (event_id, kind, recipient).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=TASK_TIME_LIMIT,
    task_soft_time_limit=TASK_SOFT_TIME_LIMIT,
    task_queues=[Queue(name, routing_key=name) for name in ALL_QUEUES],
    task_default_queue=queue_for(Lane.BULK),
    task_routes={"dispatcher.sweep": {"queue": MAINTENANCE_QUEUE}},
    worker_consumer="dispatcher.tasks:RecordingConsumer",
    beat_schedule={
        "sweep": {
            "task": "dispatcher.sweep",
            "schedule": _settings.sweep_interval_seconds,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": _settings.sweep_interval_seconds},
        }
    },
)
