"""Replaying dead letters, for ``dispatcher dead-letters replay`` and the admin API alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from config_store.repository import SettingsRepository
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import DeliveryFilter, DeliveryView
from dispatcher.domain.events import Event, parse_event
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.domain.statuses import DeliveryStatus
from dispatcher.errors import DispatcherError

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Replayable(Protocol):
    """Where dead letters come from: the record, or a stand-in in tests."""

    def replay_dead(self, ids: Iterable[int] | None) -> list[FollowUp]: ...

    def failed_event_payloads(self, event_ids: Iterable[str] | None) -> list[Mapping[str, Any]]: ...


class DeadLetters:
    """Dead deliveries and failed events in the record, moved back to work."""

    def __init__(
        self,
        records: DeliveryRecords,
        settings_repository: SettingsRepository,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.records = records
        self.settings_repository = settings_repository
        self.clock = clock

    def replay_dead(self, ids: Iterable[int] | None) -> list[FollowUp]:
        """Queue dead deliveries again (all when ``ids`` is None) with current settings."""
        wanted = None if ids is None else list(ids)
        groups = {d.group for d in self._dead(wanted)}
        versions: dict[str, int] = {}
        for group in groups:
            try:
                version = self.settings_repository.snapshot(group).version
            except DispatcherError:
                continue
            if version is not None:
                versions[group] = version
        views = self.records.requeue_dead(wanted, versions, self.clock())
        return [FollowUp(view.id, view.lane, 0.0) for view in views]

    def _dead(self, ids: list[int] | None) -> list[DeliveryView]:
        if ids is None:
            return self.records.deliveries(
                DeliveryFilter(status=DeliveryStatus.DEAD, limit=100_000)
            )
        found = [self.records.delivery(i) for i in ids]
        return [d for d in found if d is not None and d.status is DeliveryStatus.DEAD]

    def failed_event_payloads(self, event_ids: Iterable[str] | None) -> list[Mapping[str, Any]]:
        """Payloads of failed events to publish again once their cause is fixed."""
        failed = self.records.failed_events(limit=100_000)
        wanted = None if event_ids is None else set(event_ids)
        return [e.payload for e in failed if wanted is None or e.event_id in wanted]


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay queued again, and what it was asked for but left alone."""

    deliveries: tuple[int, ...]
    events: tuple[str, ...]
    skipped_deliveries: tuple[int, ...] = ()
    skipped_events: tuple[str, ...] = ()


def replay_dead_letters(
    source: Replayable,
    schedule: Callable[[list[FollowUp]], None],
    enqueue: Callable[[Event], None],
    *,
    deliveries: Sequence[int] = (),
    events: Sequence[str] = (),
    everything: bool = False,
    before_sending: Callable[[ReplaySummary], None] | None = None,
) -> ReplaySummary:
    """Queue dead deliveries again and publish failed events again (all with ``everything``).

    The deliveries go back to the queue in the database first; ``before_sending``
    gets the summary then, before anything goes to the broker, so that what
    the database shows is reported even if the broker fails next.
    """
    follow_ups: list[FollowUp] = []
    if everything or deliveries:
        follow_ups = source.replay_dead(None if everything else list(deliveries))
    payloads: list[Mapping[str, Any]] = []
    if everything or events:
        payloads = source.failed_event_payloads(None if everything else list(events))
    moved = tuple(item.delivery_id for item in follow_ups)
    replayed = tuple(str(payload["event_id"]) for payload in payloads)
    summary = ReplaySummary(
        deliveries=moved,
        events=replayed,
        skipped_deliveries=_left_out(deliveries, moved),
        skipped_events=_left_out(events, replayed),
    )
    if before_sending is not None:
        before_sending(summary)
    schedule(follow_ups)
    for payload in payloads:
        enqueue(parse_event(dict(payload)))
    return summary


def _left_out(asked: Sequence[T], done: Sequence[T]) -> tuple[T, ...]:
    finished = set(done)
    return tuple(item for item in asked if item not in finished)
