"""The sweep: deliveries whose task was lost or whose worker died, to enqueue again."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from dispatcher.delivery.record import DeliveryRecords
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.settings import Settings

log = logging.getLogger("dispatcher.delivery")


def sweep(records: DeliveryRecords, config: Settings, now: datetime) -> list[FollowUp]:
    """Deliveries to enqueue now: overdue ones whose task was lost, abandoned ones.

    A waiting delivery overdue by the grace period lost its task (a Redis
    restart, say); one "sending" for longer than the lease lost its worker.
    Each is enqueued at most once per hold period, so that a long queue is
    not filled with copies of tasks still waiting in it.
    """
    interval = config.sweep_interval_seconds
    views = records.due(
        now,
        grace=timedelta(seconds=max(30.0, 3 * interval)),
        lease=timedelta(seconds=config.sending_lease_seconds),
        hold=timedelta(seconds=max(300.0, 10 * interval)),
    )
    if views:
        log.info("sweep re-enqueues %d deliveries", len(views))
    return [FollowUp(view.id, view.lane, 0.0) for view in views]
