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

from dispatcher.broker import guard as broker_guard
from dispatcher.domain.kinds import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE, Lane, queue_for
from dispatcher.settings import get_settings

broker_guard.install()

_settings = get_settings()
# 90 s by default: work of a worker killed outright is back within two minutes.
VISIBILITY_TIMEOUT = _settings.visibility_timeout_seconds
MAX_COUNTDOWN = VISIBILITY_TIMEOUT * 2 // 3
TASK_TIME_LIMIT = VISIBILITY_TIMEOUT * 5 // 6
TASK_SOFT_TIME_LIMIT = VISIBILITY_TIMEOUT * 3 // 4
TRANSPORT_OPTIONS = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "global_keyprefix": _settings.broker_prefix,
    # A publisher must fail fast, not hang, when Redis is down.
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    # kombu scans for expired unacked messages every interval x throttle
    # seconds (100 s by default), which on top of the visibility timeout would
    # break the two-minute promise: scan every 10 s instead. The scan is one
    # ZRANGE on an index, cheap at this rate.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    # A worker killed while holding the restore mutex would otherwise block
    # every restore for five minutes; a scan takes milliseconds.
    "unacked_mutex_expire": 30,
    # Take work from the queues in the order of CONSUME_ORDER, not round robin:
    # a worker that serves every lane takes a waiting password reset as soon as
    # one of its processes is free, however long the bulk queue is.
    "queue_order_strategy": "priority",
}
if _settings.broker_sentinel_master:
    TRANSPORT_OPTIONS["master_name"] = _settings.broker_sentinel_master
# Interactive first; the sweeper's few tasks before a batch so that it never
# starves behind one.
CONSUME_ORDER = (
    queue_for(Lane.INTERACTIVE),
    MAINTENANCE_QUEUE,
    queue_for(Lane.BULK),
    WEBHOOKS_QUEUE,
)

app = Celery("dispatcher", broker=_settings.broker_url, include=["dispatcher.worker.tasks"])
app.conf.update(
    broker_transport_options=TRANSPORT_OPTIONS,
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
    task_queues=[Queue(name, routing_key=name) for name in CONSUME_ORDER],
    task_default_queue=queue_for(Lane.BULK),
    task_routes={
        "dispatcher.sweep": {"queue": MAINTENANCE_QUEUE},
        "dispatcher.send_webhooks": {"queue": WEBHOOKS_QUEUE},
    },
    worker_consumer="dispatcher.worker.consumer:RecordingConsumer",
    beat_schedule={
        "sweep": {
            "task": "dispatcher.sweep",
            "schedule": _settings.sweep_interval_seconds,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": _settings.sweep_interval_seconds},
        }
    },
)
