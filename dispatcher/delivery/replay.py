"""Replaying dead letters, for ``dispatcher dead-letters replay`` and the admin API alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dispatcher.delivery.orchestrator import Dispatcher, FollowUp
from dispatcher.domain.events import Event, parse_event

T = TypeVar("T")


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay queued again, and what it was asked for but left alone."""

    deliveries: tuple[int, ...]
    events: tuple[str, ...]
    skipped_deliveries: tuple[int, ...] = ()
    skipped_events: tuple[str, ...] = ()


def replay_dead_letters(
    dispatcher: Dispatcher,
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
        follow_ups = dispatcher.replay_dead(None if everything else list(deliveries))
    payloads: list[Mapping[str, Any]] = []
    if everything or events:
        payloads = dispatcher.failed_event_payloads(None if everything else list(events))
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
