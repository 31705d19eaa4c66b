"""The sweeper's clock inside every worker, so that Celery beat is optional.

Beat is a singleton that operators forget or lose; without a sweep, the work
of a worker killed outright is never finished. Every worker therefore runs
this clock: on each tick it tries to take a short lock in Redis, and the one
that takes it enqueues ``dispatcher.sweep`` for the interval. However many
workers run, the installation sweeps about once per interval; beat, if it
runs too, only adds sweeps, which are idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery import bootsteps
from kombu.exceptions import OperationalError

from dispatcher.broker import publisher
from dispatcher.broker.queues import SWEEP_LOCK, redis_for_settings
from dispatcher.settings import get_settings

log = logging.getLogger("dispatcher.worker")


class SweepClock(bootsteps.StartStopStep):  # type: ignore[misc]
    """A worker step: every sweep interval, the first worker to ask enqueues the sweep."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.client: Any = None
        settings = get_settings()
        self.interval = settings.sweep_interval_seconds
        self.key = f"{settings.broker_prefix}{SWEEP_LOCK}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def start(self, worker: Any) -> None:
        self.client = redis_for_settings(get_settings())
        if self.client is None:
            log.warning("the sweeper's clock needs a Redis broker; run celery beat instead")
            return
        self.tref = worker.timer.call_repeatedly(self.interval, self.tick, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def tick(self) -> None:
        """Enqueue the sweep if no other worker did in this interval."""
        try:
            # Expiring a little before the next tick keeps one sweep per interval
            # while the worker that took it last lives, and hands over at once
            # when it does not.
            taken = self.client.set(
                self.key, self.owner, nx=True, px=max(1, int(self.interval * 900))
            )
        except Exception as exc:  # noqa: BLE001 - the clock must outlive a broker outage
            log.debug("sweep lock not asked (%s); the next tick tries again", exc)
            return
        if not taken:
            return
        try:
            publisher.request_sweep(expires=self.interval)
        except (OperationalError, OSError) as exc:
            log.warning("sweep not enqueued (%s); the next tick tries again", exc)
        else:
            log.debug("sweep enqueued at %.0f", time.time())
