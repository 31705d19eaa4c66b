"""The one dead-letter replay behind the command line and the admin API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from dispatcher.delivery.replay import ReplaySummary, replay_dead_letters
from dispatcher.domain.events import Event
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event


class Records:
    """Stands in for the dispatcher: deliveries 1 and 2 are dead, event f-1 failed."""

    def __init__(self) -> None:
        self.dead = {1, 2}
        failed = sample_event(EventType.PASSWORD_RESET)
        failed.update(event_id="f-1", customer_group="RETAIL")
        self.failed = [failed]
        self.asked: list[tuple[str, Any]] = []

    def replay_dead(self, ids: Iterable[int] | None) -> list[FollowUp]:
        wanted = None if ids is None else list(ids)
        self.asked.append(("deliveries", wanted))
        moved = sorted(self.dead if wanted is None else self.dead & set(wanted))
        self.dead -= set(moved)
        return [FollowUp(i, "interactive", 0.0) for i in moved]

    def failed_event_payloads(self, event_ids: Iterable[str] | None) -> list[Mapping[str, Any]]:
        wanted = None if event_ids is None else set(event_ids)
        self.asked.append(("events", wanted))
        return [p for p in self.failed if wanted is None or p["event_id"] in wanted]


def run(records: Records, log: list[str], **kwargs: Any) -> ReplaySummary:
    def schedule(items: list[FollowUp]) -> None:
        log.append(f"schedule {[i.delivery_id for i in items]}")

    def enqueue(event: Event) -> None:
        log.append(f"enqueue {event.event_id}")

    def before_sending(summary: ReplaySummary) -> None:
        log.append(f"report {summary.deliveries} {summary.events}")

    return replay_dead_letters(
        records,  # type: ignore[arg-type]
        schedule,
        enqueue,
        before_sending=before_sending,
        **kwargs,
    )


def test_by_id_reports_what_it_left_before_sending() -> None:
    records, log = Records(), []
    summary = run(records, log, deliveries=[2, 7, 2], events=["f-1", "nope"])
    assert summary == ReplaySummary(
        deliveries=(2,), events=("f-1",), skipped_deliveries=(7,), skipped_events=("nope",)
    )
    assert log == ["report (2,) ('f-1',)", "schedule [2]", "enqueue f-1"]


def test_everything_replays_all_and_skips_nothing() -> None:
    records, log = Records(), []
    summary = run(records, log, everything=True)
    assert summary == ReplaySummary(deliveries=(1, 2), events=("f-1",))
    assert records.asked == [("deliveries", None), ("events", None)]


@pytest.mark.parametrize(
    ("kwargs", "asked"),
    [({"deliveries": [1]}, ["deliveries"]), ({"events": ["f-1"]}, ["events"])],
)
def test_only_what_was_asked_for_is_looked_up(kwargs: dict[str, Any], asked: list[str]) -> None:
    records, log = Records(), []
    run(records, log, **kwargs)
    assert [what for what, _ in records.asked] == asked
