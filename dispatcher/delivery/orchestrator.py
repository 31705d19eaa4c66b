"""The one orchestrator: an event becomes recorded deliveries and sent e-mails.

It knows nothing of Celery: what must happen later comes back as
``FollowUp`` values that the task layer schedules. Steps, in order:
parse and validate; load the group's settings snapshot; plan; record the
event and its deliveries in one transaction; for each due delivery claim it,
render, send over the process's SMTP connection, and record the outcome.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from config_store.repository import SettingsRepository
from dispatcher.delivery.acceptance import Acceptance, AcceptanceMarks
from dispatcher.delivery.limits import Decision, Limits
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.replay import DeadLetters
from dispatcher.delivery.retry import RetryPolicy, after_failure
from dispatcher.delivery.sweep import sweep
from dispatcher.delivery.views import (
    Accepted,
    AcceptRequest,
    AttemptResult,
    Claimed,
    DeliveryView,
    NewDelivery,
)
from dispatcher.delivery.webhooks import OutboxRow, endpoints, outcome_rows
from dispatcher.domain.addresses import Mailbox, parse_mailbox
from dispatcher.domain.events import Event, parse_event
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.domain.kinds import KIND_BY_NAME, Lane, lane_for_event
from dispatcher.domain.return_path import make_return_path
from dispatcher.domain.rules import plan
from dispatcher.domain.samples import context_for, sample_event
from dispatcher.domain.statuses import (
    WAITING,
    WEBHOOK_FOR_STATUS,
    DeliveryStatus,
    EventStatus,
    Verdict,
)
from dispatcher.domain.test_send import TestSend
from dispatcher.errors import (
    DispatcherError,
    InvalidEvent,
    NoSettings,
    StoreUnavailable,
    UnknownGroup,
)
from dispatcher.mail.dkim import DkimKeys
from dispatcher.mail.render import build_message, message_id_for, render_email
from dispatcher.mail.wire import to_bytes
from dispatcher.ops import logs, metrics
from dispatcher.settings import Settings
from dispatcher.smtp.transport import DeliveryFailure, Route, SmtpReply

log = logging.getLogger("dispatcher.delivery")

RETRY_STATUSES = (DeliveryStatus.RETRYING, DeliveryStatus.UNKNOWN)
# In a batch, outcomes are written to the record every this many e-mails.
FINISH_EVERY = 10
# A delivery claimed by a worker counts as due this much early, so that a
# retry task firing a moment before its due time (clock skew) still runs.
CLAIM_SLACK = timedelta(seconds=2)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Prepared:
    """An event validated, with its group's settings and its planned e-mails."""

    event: Event
    payload: dict[str, Any]
    lane: str
    settings: GroupSettings
    planned: list[NewDelivery]

    def outcome(
        self,
        status: EventStatus,
        deliveries: Iterable[DeliveryView],
        follow_ups: Iterable[FollowUp],
    ) -> EventOutcome:
        return EventOutcome(
            self.event.event_id,
            status,
            None,
            tuple(deliveries),
            tuple(follow_ups),
            event_type=self.event.type,
            group=self.event.customer_group,
        )


class MailSender(Protocol):
    """What sends a message: one relay (``SmtpTransport``) or the routes' (``RelayRouter``)."""

    def deliver(self, data: bytes, sender: str, recipient: str, route: Route) -> SmtpReply: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Outgoing:
    """A message ready to send: its bytes, its envelope sender and its route."""

    data: bytes
    envelope_from: str
    route: Route


class _Job(NamedTuple):
    """One claimed delivery to attempt, with what its event brought along."""

    claimed: Claimed
    event: Event | None
    settings: GroupSettings | None
    published_at: float | None


@dataclass
class _Outcomes:
    """Attempts not yet written to the record, with the webhooks that report them."""

    results: list[AttemptResult] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)

    def add(self, result: AttemptResult, webhooks: Iterable[OutboxRow]) -> None:
        self.results.append(result)
        self.outbox.extend(webhooks)

    def clear(self) -> None:
        self.results.clear()
        self.outbox.clear()


@dataclass(frozen=True)
class EventOutcome:
    event_id: str | None
    status: EventStatus
    reason: str | None = None
    deliveries: tuple[DeliveryView, ...] = ()
    follow_ups: tuple[FollowUp, ...] = field(default=())
    event_type: str = "-"
    group: str = "-"


class Dispatcher:
    """Turns events into e-mails; one instance per worker process."""

    def __init__(
        self,
        settings_repository: SettingsRepository,
        records: DeliveryRecords,
        transport: MailSender,
        config: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        limits: Limits | None = None,
        marks: AcceptanceMarks | None = None,
        dkim: DkimKeys | None = None,
    ) -> None:
        self.settings_repository = settings_repository
        self.records = records
        self.transport = transport
        self.config = config
        self.clock = clock
        self.jitter = jitter
        self.limits = limits
        self.retry_policy = RetryPolicy(
            config.retry_base_seconds, config.retry_max_seconds, config.retry_max_attempts
        )
        self.marks = marks
        self.dkim = dkim
        self.webhook_targets = endpoints(config)
        self.return_path_key = (
            config.secret_key.get_secret_value() if config.secret_key is not None else None
        )
        # Set when outcomes wrote webhooks; the task layer then asks for them
        # to be sent (``take_webhooks_due``).
        self._webhooks_due = False

    # Events -----------------------------------------------------------------

    def handle_event(self, raw: object, published_at: float | None = None) -> EventOutcome:
        """Process one raw event from the queue; never raises for bad input.

        ``published_at`` (Unix time, from the message) times event-to-acceptance.
        """
        outcome = self._handle_event(raw, published_at)
        _count_event(outcome)
        return outcome

    def _handle_event(self, raw: object, published_at: float | None) -> EventOutcome:
        prepared = self._prepare(raw, self.clock())
        if isinstance(prepared, EventOutcome):
            return prepared
        accepted = self.records.record_accepted(
            prepared.payload,
            prepared.lane,
            prepared.planned,
            prepared.settings.version or 0,
            self.clock(),
        )
        follow_ups = self._deliver(accepted, prepared.event, prepared.settings, published_at)
        status = EventStatus.ACCEPTED if accepted.new else EventStatus.DUPLICATE
        return prepared.outcome(status, accepted.deliveries, follow_ups)

    def handle_events(
        self,
        raws: Sequence[object],
        published_at: float | None = None,
        *,
        published_each: Sequence[float | None] | None = None,
    ) -> list[EventOutcome]:
        """Process a batch of raw events: one transaction records them all.

        Each event is still validated, deduplicated and accounted for on its
        own; only the database work is shared. Outcomes of sends are written
        every ``FINISH_EVERY`` e-mails, which bounds how many a crashed worker
        leaves "sending" (to be sent again as uncertain). ``published_each``
        gives each event its own publication time (events that arrived as
        messages of their own); otherwise ``published_at`` holds for all.
        """
        now = self.clock()
        outcomes: list[EventOutcome] = []
        prepared: list[_Prepared] = []
        published: list[float | None] = []
        times = published_each if published_each is not None else [published_at] * len(raws)
        for raw, at in zip(raws, times, strict=True):
            item = self._prepare(raw, now)
            if isinstance(item, EventOutcome):
                outcomes.append(item)
            else:
                prepared.append(item)
                published.append(at)
        accepted = self.records.record_accepted_many(
            [
                AcceptRequest(p.payload, p.lane, p.planned, p.settings.version or 0)
                for p in prepared
            ],
            now,
        )
        pending = _Outcomes()
        # The new events' e-mails go as one run, so that what is asked of
        # Redis per e-mail (cooldowns, earlier acceptances) is asked once.
        ran = self._attempt_jobs(
            [
                _Job(claimed, item.event, item.settings, at)
                for item, recorded, at in zip(prepared, accepted, published, strict=True)
                if recorded.new
                for claimed in recorded.claimed
            ],
            pending,
        )
        for item, recorded, at in zip(prepared, accepted, published, strict=True):
            if recorded.new:
                follow_ups = ran.get(item.event.event_id, [])
            else:
                follow_ups = self._deliver(recorded, item.event, item.settings, at, pending)
            status = EventStatus.ACCEPTED if recorded.new else EventStatus.DUPLICATE
            outcomes.append(item.outcome(status, recorded.deliveries, follow_ups))
        self._finish(pending)
        for outcome in outcomes:
            _count_event(outcome)
        return outcomes

    def _prepare(self, raw: object, now: datetime) -> _Prepared | EventOutcome:
        """Validate, load the group's settings and plan; outcomes for what stops here."""
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            event_id = event_id if isinstance(event_id, str) else None
            reason = "; ".join(str(error) for error in exc.errors) or str(exc)
            self.records.record_rejected(event_id, reason, raw, now)
            logs.step(log, logging.WARNING, "event rejected", event_id=event_id, reason=reason)
            return EventOutcome(event_id, EventStatus.REJECTED, reason)
        payload = event.model_dump(mode="json", exclude_none=True)
        lane = lane_for_event(event.type).value
        try:
            settings = self.settings_repository.snapshot(
                event.customer_group, max_age=self.config.settings_cache_seconds
            )
        except (UnknownGroup, NoSettings) as exc:
            view = self.records.record_failed(payload, lane, str(exc), now)
            if view.outcome == EventStatus.ACCEPTED:  # A redelivered copy of an accepted event.
                return EventOutcome(
                    event.event_id,
                    EventStatus.DUPLICATE,
                    event_type=event.type,
                    group=event.customer_group,
                )
            logs.step(
                log,
                logging.WARNING,
                "event failed",
                event_id=event.event_id,
                group=event.customer_group,
                reason=str(exc),
            )
            return EventOutcome(
                event.event_id,
                EventStatus.FAILED,
                str(exc),
                event_type=event.type,
                group=event.customer_group,
            )
        if settings.group_code != event.customer_group:
            # Codes match regardless of case; the record, limits and metrics
            # name the group as it is stored.
            event = event.model_copy(update={"customer_group": settings.group_code})
            payload = {**payload, "customer_group": settings.group_code}
        domain = settings.sender.address.rpartition("@")[2]
        planned = []
        for item in plan(event, settings):
            address = parse_mailbox(item.recipient.email).address
            planned.append(
                NewDelivery(
                    kind=item.kind.name,
                    recipient=address,
                    recipient_name=item.recipient.name,
                    recipient_locale=item.recipient.locale,
                    message_id=message_id_for(event.event_id, item.kind.name, address, domain),
                    lane=item.kind.lane.value,
                )
            )
        return _Prepared(event, payload, lane, settings, planned)

    def _deliver(
        self,
        accepted: Accepted,
        event: Event,
        settings: GroupSettings,
        published_at: float | None = None,
        pending: _Outcomes | None = None,
    ) -> list[FollowUp]:
        """Send what recording claimed; for a redelivered event, whatever is still due."""
        if accepted.new:
            return self._attempt_all(accepted.claimed, event, settings, published_at, pending)
        due = [d.id for d in accepted.deliveries if d.status in WAITING]
        return self.send(due, event=event, settings=settings, published_at=published_at)

    def handle_test_send(self, request: Mapping[str, Any]) -> EventOutcome:
        """Send one kind of e-mail with sample data to a given address, marked as a test.

        It travels the real path (record, render, SMTP) but ignores the
        checkboxes: an administrator checking a text wants to see it.
        """
        now = self.clock()
        try:
            test = TestSend.parse(request)
        except DispatcherError as exc:
            self.records.record_rejected(None, f"test send: {exc}", dict(request), now)
            return EventOutcome(None, EventStatus.REJECTED, str(exc))
        settings = self.settings_repository.snapshot(test.group)
        kind = KIND_BY_NAME[test.kind]
        raw = sample_event(kind.event_type)
        raw.update(event_id=test.event_id, customer_group=test.group)
        person = {
            "email": test.address,
            "name": "Test",
            **({"locale": test.locale} if test.locale else {}),
        }
        if kind.recipient_field:
            raw[kind.recipient_field] = person
        event = parse_event(raw)
        address = parse_mailbox(test.address).address
        planned = [
            NewDelivery(
                kind=kind.name,
                recipient=address,
                recipient_name="Test",
                recipient_locale=test.locale,
                message_id=message_id_for(
                    event.event_id, kind.name, address, settings.sender.address.rpartition("@")[2]
                ),
                lane=kind.lane.value,
            )
        ]
        payload = event.model_dump(mode="json", exclude_none=True)
        accepted = self.records.record_accepted(
            payload, kind.lane.value, planned, settings.version or 0, now, test=True
        )
        follow_ups = self._deliver(accepted, event, settings)
        return EventOutcome(
            event.event_id,
            EventStatus.ACCEPTED,
            None,
            accepted.deliveries,
            tuple(follow_ups),
            event_type=event.type,
            group=event.customer_group,
        )

    # Deliveries -------------------------------------------------------------

    def send(
        self,
        delivery_ids: Iterable[int],
        *,
        event: Event | None = None,
        settings: GroupSettings | None = None,
        published_at: float | None = None,
    ) -> list[FollowUp]:
        """Claim, render and send the due deliveries among ``delivery_ids``."""
        lease = timedelta(seconds=self.config.sending_lease_seconds)
        claimed = self.records.claim(delivery_ids, self.clock(), lease, CLAIM_SLACK)
        return self._attempt_all(claimed, event, settings, published_at)

    def _attempt_all(
        self,
        claimed: Iterable[Claimed],
        event: Event | None,
        settings: GroupSettings | None,
        published_at: float | None,
        pending: _Outcomes | None = None,
    ) -> list[FollowUp]:
        """Attempt each claimed delivery; record outcomes now, or into ``pending``."""
        jobs = [_Job(item, event, settings, published_at) for item in claimed]
        ran = self._attempt_jobs(jobs, pending)
        return [f for follow_ups in ran.values() for f in follow_ups]

    def _attempt_jobs(
        self, jobs: Sequence[_Job], pending: _Outcomes | None
    ) -> dict[str, list[FollowUp]]:
        """Attempt claimed deliveries; their follow-ups by event id.

        With ``pending`` (a batch), outcomes are written every ``FINISH_EVERY``,
        else at the end. Earlier acceptances and cooldowns are asked once for
        all of ``jobs``.
        """
        outcomes = _Outcomes() if pending is None else pending
        follow_ups: dict[str, list[FollowUp]] = {}
        items = [job.claimed for job in jobs]
        taken = self._taken_before(items)
        cooldowns = self._cooldowns(
            [i.delivery for i in items if i.delivery.id not in taken and i.suppressed is None]
        )
        for job in jobs:
            item = job.claimed
            result = taken.get(item.delivery.id) or self._attempt(
                item, job.event, job.settings, cooldowns.get(item.delivery.id)
            )
            outcomes.add(result, self._webhooks_for(item.delivery, result))
            _count(item.delivery, result, job.published_at)
            mine = follow_ups.setdefault(item.delivery.event_id, [])
            if result.status in RETRY_STATUSES and result.next_attempt_at:
                delay = max(0.0, (result.next_attempt_at - self.clock()).total_seconds())
                mine.append(FollowUp(item.delivery.id, item.delivery.lane, delay))
            if pending is not None and len(outcomes.results) >= FINISH_EVERY:
                self._finish(outcomes)
        if pending is None:
            self._finish(outcomes)
        return follow_ups

    def _taken_before(self, items: Sequence[Claimed]) -> dict[int, AttemptResult]:
        """Taken-over deliveries that a relay had accepted already: sent, not sent again.

        Only deliveries marked uncertain can be such a takeover, so the
        everyday path asks nothing.
        """
        if self.marks is None:
            return {}
        found = self.marks.find(item.delivery.id for item in items if item.delivery.uncertain)
        return {
            delivery_id: AttemptResult(
                delivery_id,
                DeliveryStatus.SENT,
                mark.code,
                mark.text,
                sent_at=mark.at,
                relay=mark.relay,
                # The claim counted an attempt that was never made.
                counts=False,
            )
            for delivery_id, mark in found.items()
        }

    def _webhooks_for(self, delivery: DeliveryView, result: AttemptResult) -> list[OutboxRow]:
        kind = WEBHOOK_FOR_STATUS.get(result.status)
        if kind is None or not self.webhook_targets or delivery.test:
            return []
        return outcome_rows(
            self.webhook_targets,
            kind,
            delivery,
            result.status,
            self.clock(),
            code=result.code,
            text=result.text,
            attempts=delivery.attempts - (0 if result.counts else 1),
            relay=result.relay,
        )

    def take_webhooks_due(self) -> bool:
        """Whether outcomes wrote webhooks since the last call (then they are to be sent)."""
        due, self._webhooks_due = self._webhooks_due, False
        return due

    def _finish(self, outcomes: _Outcomes) -> None:
        """Record outcomes, riding out a short database outage (a restart, a failover).

        The e-mails were handed over already: if their outcome is not written,
        they look abandoned and are sent again, so it is worth waiting here.
        """
        if not outcomes.results:
            return
        delay = 0.25
        deadline = time.monotonic() + self.config.smtp_timeout * 3
        while True:
            try:
                self.records.finish(outcomes.results, self.clock(), outcomes.outbox)
            except StoreUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
            else:
                break
        if outcomes.outbox:
            self._webhooks_due = True
        outcomes.clear()

    def _cooldowns(self, deliveries: Sequence[DeliveryView]) -> dict[int, Decision]:
        """The cooldown's answers for the interactive e-mails about to go, in one round trip.

        Asked before any of them is sent, in order, which gives the answers of
        asking just before each send: every e-mail asked about is counted,
        whether it then goes or not.
        """
        if self.limits is None:
            return {}
        interactive = Lane.INTERACTIVE
        due = [d for d in deliveries if not d.test and KIND_BY_NAME[d.kind].lane is interactive]
        decisions = self.limits.cooldowns(
            [(d.kind, d.recipient, d.id) for d in due], self.clock().timestamp()
        )
        return {d.id: decision for d, decision in zip(due, decisions, strict=True)}

    def _attempt(
        self,
        item: Claimed,
        event: Event | None,
        settings: GroupSettings | None,
        cooldown: Decision | None = None,
    ) -> AttemptResult:
        delivery = item.delivery
        now = self.clock()
        fields: dict[str, Any] = {
            "event_id": delivery.event_id,
            "delivery_id": delivery.id,
            "group": delivery.group,
            "kind": delivery.kind,
            "attempt": delivery.attempts,
        }
        reason = item.suppressed
        if reason is not None:
            metrics.SUPPRESSED.labels(kind=delivery.kind, reason="suppression_list").inc()
            logs.step(log, logging.WARNING, "delivery suppressed", **fields, reason="list")
            return AttemptResult(
                delivery.id,
                DeliveryStatus.SUPPRESSED,
                None,
                f"the address is on the suppression list: {reason}",
            )
        held = self._held_back(delivery, now, cooldown)
        if held is not None:
            return held
        try:
            with _timed(metrics.RENDER_SECONDS):
                outgoing = self._build(item, event, settings, now)
        except DispatcherError as exc:
            logs.step(log, logging.ERROR, "delivery dead", **fields, reason=f"cannot render: {exc}")
            return AttemptResult(delivery.id, DeliveryStatus.DEAD, None, f"cannot render: {exc}")
        started = time.perf_counter()
        try:
            reply = self.transport.deliver(
                outgoing.data, outgoing.envelope_from, delivery.recipient, outgoing.route
            )
        except DeliveryFailure as exc:
            metrics.SMTP_SECONDS.labels(outcome=exc.verdict).observe(time.perf_counter() - started)
            return self._failed(delivery, exc, now, fields)
        metrics.SMTP_SECONDS.labels(outcome="accepted").observe(time.perf_counter() - started)
        sent_at = self.clock()
        if self.marks is not None:
            self.marks.mark(delivery.id, Acceptance(reply.code, reply.text, sent_at, reply.relay))
        logs.step(log, logging.INFO, "delivery sent", **fields, smtp_code=reply.code)
        return AttemptResult(
            delivery.id,
            DeliveryStatus.SENT,
            reply.code,
            reply.text,
            sent_at=sent_at,
            relay=reply.relay,
        )

    def _held_back(
        self, delivery: DeliveryView, now: datetime, cooldown: Decision | None
    ) -> AttemptResult | None:
        """Apply the cooldown (suppress) and the group rate (defer), if configured.

        ``cooldown`` is the answer asked for beforehand (``_cooldowns``).
        """
        if self.limits is None or delivery.test:
            return None
        kind = KIND_BY_NAME[delivery.kind]
        if kind.lane is Lane.INTERACTIVE:
            decision = cooldown or self.limits.cooldown(
                delivery.kind, delivery.recipient, delivery.id, now.timestamp()
            )
            if not decision.allowed:
                metrics.SUPPRESSED.labels(kind=delivery.kind, reason="cooldown").inc()
                logs.step(
                    log,
                    logging.WARNING,
                    "delivery suppressed",
                    event_id=delivery.event_id,
                    delivery_id=delivery.id,
                    group=delivery.group,
                    kind=delivery.kind,
                    reason="cooldown",
                )
                return AttemptResult(delivery.id, DeliveryStatus.SUPPRESSED, None, decision.reason)
            return None
        decision = self.limits.group_rate(delivery.group, now.timestamp())
        if decision.allowed or decision.retry_at is None:
            return None
        metrics.SUPPRESSED.labels(kind=delivery.kind, reason="group_rate_deferred").inc()
        due = datetime.fromtimestamp(decision.retry_at, UTC) + timedelta(seconds=self.jitter() * 5)
        return AttemptResult(
            delivery.id,
            DeliveryStatus.RETRYING,
            None,
            decision.reason,
            next_attempt_at=due,
            counts=False,
        )

    def _failed(
        self, delivery: DeliveryView, exc: DeliveryFailure, now: datetime, fields: dict[str, Any]
    ) -> AttemptResult:
        """Ask the retry policy what the failure leads to, and log it."""
        decision = after_failure(self.retry_policy, exc.verdict, delivery.attempts, self.jitter())
        uncertain = exc.verdict is Verdict.UNKNOWN
        if decision.delay is None:
            text = exc.text
            if decision.exhausted:
                text = f"gave up after {delivery.attempts} attempts; last: {exc.text}"
            logs.step(
                log,
                logging.WARNING,
                "delivery dead",
                **fields,
                smtp_code=exc.code,
                **({"reason": "retries exhausted"} if decision.exhausted else {}),
            )
            return AttemptResult(
                delivery.id, DeliveryStatus.DEAD, exc.code, text, uncertain=uncertain
            )
        due = now + timedelta(seconds=decision.delay)
        logs.step(
            log,
            logging.INFO,
            f"delivery {decision.status}",
            **fields,
            smtp_code=exc.code,
            retry_at=due.isoformat(timespec="seconds"),
        )
        return AttemptResult(
            delivery.id,
            decision.status,
            exc.code,
            exc.text,
            next_attempt_at=due,
            uncertain=uncertain,
            relay=exc.relay,
        )

    def _build(
        self, item: Claimed, event: Event | None, settings: GroupSettings | None, now: datetime
    ) -> _Outgoing:
        """Render, build, serialise and (with a key for the sender's domain) DKIM-sign."""
        delivery = item.delivery
        if event is None or event.event_id != delivery.event_id:
            event = parse_event(dict(item.payload))
        if settings is None or (settings.group_code, settings.version) != (
            delivery.group,
            delivery.settings_version,
        ):
            settings = self.settings_repository.snapshot_version(
                delivery.group, delivery.settings_version
            )
        kind = KIND_BY_NAME[delivery.kind]
        context = context_for(
            event, kind, settings.group_code, settings.group_name, settings.access_requests_to
        )
        email = render_email(settings.text_for(kind, delivery.recipient_locale), context)
        recipient = Mailbox(delivery.recipient, delivery.recipient_name)
        message = build_message(email, settings.sender, recipient, delivery.message_id, now)
        domain = settings.sender.address.rpartition("@")[2]
        data = to_bytes(message)
        if self.dkim is not None:
            data = self.dkim.sign(data, domain)
        return _Outgoing(
            data, self._envelope_from(delivery, settings), Route(domain, settings.group_code)
        )

    def _envelope_from(self, delivery: DeliveryView, settings: GroupSettings) -> str:
        """The return path: signed for the bounce server, or the configured or group sender."""
        if self.config.bounce_domain and self.return_path_key:
            return make_return_path(delivery.id, self.return_path_key, self.config.bounce_domain)
        return self.config.smtp_envelope_from or settings.sender.address

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` (the retry policy, with jitter)."""
        return self.retry_policy.backoff(attempts, self.jitter())

    # Upkeep -----------------------------------------------------------------

    def sweep(self) -> list[FollowUp]:
        """Deliveries whose task was lost or whose worker died, to enqueue now."""
        return sweep(self.records, self.config, self.clock())

    def replay_dead(self, ids: Iterable[int] | None) -> list[FollowUp]:
        """Queue dead deliveries again (all when ``ids`` is None) with current settings."""
        return self._dead_letters().replay_dead(ids)

    def failed_event_payloads(self, event_ids: Iterable[str] | None) -> list[Mapping[str, Any]]:
        """Payloads of failed events to publish again once their cause is fixed."""
        return self._dead_letters().failed_event_payloads(event_ids)

    def _dead_letters(self) -> DeadLetters:
        return DeadLetters(self.records, self.settings_repository, self.clock)


def _count_event(outcome: EventOutcome) -> None:
    rejected = outcome.status is EventStatus.REJECTED
    metrics.EVENTS.labels(
        type="invalid" if rejected else outcome.event_type,
        group="-" if rejected else outcome.group,
        outcome=outcome.status,
    ).inc()


@contextmanager
def _timed(histogram: Any) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)


def _count(delivery: DeliveryView, result: AttemptResult, published_at: float | None) -> None:
    metrics.EMAILS.labels(kind=delivery.kind, status=result.status).inc()
    if result.status in RETRY_STATUSES:
        metrics.RETRIES.labels(kind=delivery.kind).inc()
    elif result.status is DeliveryStatus.DEAD:
        metrics.DEAD_LETTERS.labels(kind=delivery.kind).inc()
    elif result.status is DeliveryStatus.SENT:
        # Retried deliveries are timed from when the event was first recorded.
        start = published_at if published_at else delivery.created_at.timestamp()
        metrics.EVENT_TO_ACCEPTANCE.labels(lane=delivery.lane).observe(
            max(0.0, time.time() - start)
        )
