"""The Celery settings that the delivery guarantees rest on."""

from __future__ import annotations

from dispatcher.broker.app import (
    CONSUME_ORDER,
    MAX_COUNTDOWN,
    TASK_TIME_LIMIT,
    VISIBILITY_TIMEOUT,
    app,
)
from dispatcher.domain.kinds import ALL_QUEUES, MAINTENANCE_QUEUE, Lane, queue_for
from dispatcher.settings import Settings


def test_work_of_a_killed_worker_comes_back_within_two_minutes() -> None:
    options = app.conf.broker_transport_options
    scan_period = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    default_timeout = Settings.model_fields["visibility_timeout_seconds"].default
    # The promise of the README and the fault suite, with 10 s left for the work itself.
    assert default_timeout + scan_period <= 110
    assert options["visibility_timeout"] == VISIBILITY_TIMEOUT
    assert options["unacked_mutex_expire"] < VISIBILITY_TIMEOUT


def test_nothing_waits_or_runs_as_long_as_the_visibility_timeout() -> None:
    # A countdown or a task longer than the timeout would be restored and run twice.
    assert MAX_COUNTDOWN < VISIBILITY_TIMEOUT
    assert TASK_TIME_LIMIT < VISIBILITY_TIMEOUT
    assert app.conf.task_acks_late
    assert app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"]


def test_workers_take_interactive_work_first_and_never_starve_the_sweeper() -> None:
    assert sorted(CONSUME_ORDER) == sorted(ALL_QUEUES)
    assert CONSUME_ORDER[0] == queue_for(Lane.INTERACTIVE)
    assert CONSUME_ORDER.index(MAINTENANCE_QUEUE) < CONSUME_ORDER.index(queue_for(Lane.BULK))
    assert [q.name for q in app.conf.task_queues] == list(CONSUME_ORDER)
    assert app.conf.broker_transport_options["queue_order_strategy"] == "priority"
