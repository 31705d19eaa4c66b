"""The delivery record: events, deliveries and rejected messages, in SQL.

Once a worker has taken an event, this record is the truth: Redis only carries
work. Every state change is one short transaction, and every transition that
two workers could race for is a guarded UPDATE, so a delivery is sent by at
most one worker at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from config_store.database import connection_scope, session_scope
from config_store.models import CustomerGroup
from dispatcher.delivery.models import (
    Delivery,
    EventRecord,
    RejectedMessage,
    Suppression,
    WebhookMessage,
)
from dispatcher.delivery.views import (
    Accepted,
    AcceptRequest,
    AttemptResult,
    Claimed,
    DeliveryFilter,
    DeliveryView,
    EventView,
    NewDelivery,
    RejectedView,
)
from dispatcher.delivery.webhooks import OutboxRow
from dispatcher.domain.fields import fold_group_code
from dispatcher.domain.statuses import FINAL, STATUSES, WAITING, DeliveryStatus, EventStatus
from dispatcher.errors import CannotResend, UnknownDelivery

# The key every original delivery is unique by (resends share it; see models.py).
ORIGINAL_KEY = ["event_id", "kind", "recipient"]
ORIGINALS_ONLY = Delivery.resend_of.is_(None)
QUEUED = DeliveryStatus.QUEUED
SENDING = DeliveryStatus.SENDING
UNKNOWN = DeliveryStatus.UNKNOWN
DEAD = DeliveryStatus.DEAD
ACCEPTED = EventStatus.ACCEPTED
FAILED = EventStatus.FAILED

MAX_TEXT = 1000
MAX_PAYLOAD_EXCERPT = 4000


def _event_row(
    payload: Mapping[str, Any], lane: str, now: datetime, outcome: str, reason: str | None
) -> dict[str, Any]:
    return {
        "event_id": payload["event_id"],
        "type": payload["type"],
        "customer_group": payload["customer_group"],
        "lane": lane,
        "received_at": now,
        "occurred_at": payload.get("occurred_at"),
        "payload": dict(payload),
        "outcome": outcome,
        "reason": clip(reason),
    }


def _delivery_row(
    event_pk: int, item: AcceptRequest, planned: NewDelivery, now: datetime
) -> dict[str, Any]:
    """A new delivery, claimed at once by the worker that records it."""
    return {
        "event_pk": event_pk,
        "event_id": item.payload["event_id"],
        "kind": planned.kind,
        "recipient": planned.recipient,
        "recipient_name": planned.recipient_name,
        "recipient_locale": planned.recipient_locale,
        "group_code": item.payload["customer_group"],
        "lane": planned.lane,
        "settings_version": item.settings_version,
        "status": SENDING,
        "attempts": 1,
        "message_id": planned.message_id,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
        "claimed_at": now,
        "uncertain": False,
        "test": item.test,
    }


def _view(row: Delivery) -> DeliveryView:
    return view_of(row)


# Fields of DeliveryView whose column has another name.
_COLUMN_OF = {"group": "group_code"}
_VIEW_COLUMNS = tuple((f.name, _COLUMN_OF.get(f.name, f.name)) for f in fields(DeliveryView))
_TIMES = ("created_at", "updated_at", "next_attempt_at", "sent_at", "bounced_at", "feedback_at")


def view_of(row: Any) -> DeliveryView:
    """A delivery from an ORM object or a Core result row (same column names)."""
    values = {name: getattr(row, column) for name, column in _VIEW_COLUMNS}
    values["status"] = DeliveryStatus(values["status"])
    for name in _TIMES:
        values[name] = _aware(values[name])
    for name in ("uncertain", "test", "ignore_suppression"):
        values[name] = bool(values[name])
    return DeliveryView(**values)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _event_view(row: EventRecord) -> EventView:
    return EventView(
        event_id=row.event_id,
        type=row.type,
        customer_group=row.customer_group,
        lane=row.lane,
        received_at=row.received_at,
        outcome=row.outcome,
        reason=row.reason,
        payload=row.payload,
    )


def _suppression_reasons(connection: Any, views: Sequence[DeliveryView]) -> dict[str, str]:
    """The suppression list's reasons for these deliveries' addresses: one indexed query.

    Asked inside the transaction that claims the deliveries, so that checking
    the list costs no transaction of its own on the path every e-mail takes.
    """
    wanted = sorted({v.recipient.lower() for v in views if not v.ignore_suppression})
    if not wanted:
        return {}
    rows = connection.execute(_SUPPRESSION_REASONS, {"addresses": wanted}).all()
    return {str(address): str(reason) for address, reason in rows}


# Statements on the path every e-mail takes are built once: building one
# (and its cache key) for every batch had cost more than a statement's round trip.
_SUPPRESSION_REASONS = select(Suppression.address, Suppression.reason).where(
    Suppression.address.in_(bindparam("addresses", expanding=True))
)
_DELIVERIES = cast(Table, Delivery.__table__)
_FINISH = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"), _DELIVERIES.c.status == SENDING)
    .values(
        status=bindparam("b_status"),
        last_code=bindparam("b_code"),
        last_text=bindparam("b_text"),
        next_attempt_at=bindparam("b_next"),
        sent_at=bindparam("b_sent"),
        claimed_at=None,
        updated_at=bindparam("b_now"),
        uncertain=or_(_DELIVERIES.c.uncertain, bindparam("b_uncertain")),
        # A deferral (rate limit) was no attempt; the claim counted one.
        attempts=_DELIVERIES.c.attempts - bindparam("b_undo"),
        relay=func.coalesce(bindparam("b_relay"), _DELIVERIES.c.relay),
    )
)


# Which of a batch's deliveries the outcome UPDATE above changed: those that
# carry its time (another worker's takeover carries another).
_FINISHED_BY_ME = select(_DELIVERIES.c.id).where(
    _DELIVERIES.c.id.in_(bindparam("ids", expanding=True)),
    _DELIVERIES.c.updated_at == bindparam("now"),
)
_INSERT_OUTBOX = insert(cast(Table, WebhookMessage.__table__))


def _held(view: DeliveryView, reasons: Mapping[str, str]) -> str | None:
    return None if view.ignore_suppression else reasons.get(view.recipient.lower())


def _claimed(
    views: Sequence[DeliveryView], payload: Mapping[str, Any], reasons: Mapping[str, str]
) -> tuple[Claimed, ...]:
    return tuple(Claimed(v, payload, _held(v, reasons)) for v in views)


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DeliveryRecords:
    """Reads and writes of the delivery record; results are plain dataclasses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        events = cast(Table, EventRecord.__table__)
        self._insert_events = (
            self._insert(events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(events.c.id, events.c.event_id)
        )
        self._insert_deliveries = (
            self._insert(_DELIVERIES)
            .on_conflict_do_nothing(index_elements=ORIGINAL_KEY, index_where=ORIGINALS_ONLY)
            .returning(*_DELIVERIES.c)
        )

    # Events -----------------------------------------------------------------

    def record_accepted(
        self,
        payload: Mapping[str, Any],
        lane: str,
        planned: Sequence[NewDelivery],
        settings_version: int,
        now: datetime,
        *,
        test: bool = False,
    ) -> Accepted:
        """Record the event and its deliveries in one transaction.

        The deliveries of a new event are claimed at once for the caller,
        which is about to send them (``Accepted.claimed``); that saves a
        second transaction on the path every e-mail takes. A republished or
        redelivered event changes nothing and returns the deliveries recorded
        the first time. An event that failed before (its group was not set up
        yet, say) is planned anew.
        """
        events = cast(Table, EventRecord.__table__)
        deliveries = cast(Table, Delivery.__table__)
        with connection_scope(self.engine) as connection:
            event_pk = connection.scalar(
                self._insert(events)
                .values(**_event_row(payload, lane, now, ACCEPTED, None))
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(events.c.id)
            )
            if event_pk is None:
                existing = connection.execute(
                    select(events.c.id, events.c.outcome)
                    .where(events.c.event_id == payload["event_id"])
                    .with_for_update()
                ).one()
                event_pk = existing.id
                if existing.outcome == ACCEPTED:
                    rows = connection.execute(
                        select(deliveries)
                        .where(deliveries.c.event_pk == event_pk)
                        .order_by(deliveries.c.id)
                    ).all()
                    return Accepted(tuple(view_of(r) for r in rows), (), new=False)
                connection.execute(
                    update(events)
                    .where(events.c.id == event_pk)
                    .values(outcome=ACCEPTED, reason=None, payload=dict(payload))
                )
            if not planned:
                return Accepted((), (), new=True)
            request = AcceptRequest(payload, lane, planned, settings_version, test)
            rows = connection.execute(
                self._insert_deliveries,
                [_delivery_row(event_pk, request, item, now) for item in planned],
            ).all()
            views = tuple(sorted((view_of(r) for r in rows), key=lambda v: v.id))
            held = _suppression_reasons(connection, views)
            return Accepted(views, _claimed(views, payload, held), new=True)

    def record_accepted_many(self, items: Sequence[AcceptRequest], now: datetime) -> list[Accepted]:
        """Record many events and claim their deliveries in one transaction.

        The batch form of ``record_accepted``, for a task that carries many
        events: one transaction instead of one per event. Events already
        recorded (republished, redelivered, failed before) take the one-by-one
        path afterwards, so their special cases live in one place.
        """
        if not items:
            return []
        inserted: dict[str, int] = {}
        claimed: dict[str, list[DeliveryView]] = {}
        with connection_scope(self.engine) as connection:
            rows = connection.execute(
                self._insert_events,
                [_event_row(item.payload, item.lane, now, ACCEPTED, None) for item in items],
            ).all()
            inserted = {row.event_id: row.id for row in rows}
            # The same event twice in one batch: only its first copy counts.
            firsts: dict[str, AcceptRequest] = {}
            for item in items:
                firsts.setdefault(item.payload["event_id"], item)
            new_rows = [
                _delivery_row(inserted[event_id], item, planned, now)
                for event_id, item in firsts.items()
                if event_id in inserted
                for planned in item.planned
            ]
            held: dict[str, str] = {}
            if new_rows:
                for row in connection.execute(self._insert_deliveries, new_rows).all():
                    claimed.setdefault(row.event_id, []).append(view_of(row))
                held = _suppression_reasons(
                    connection, [v for views in claimed.values() for v in views]
                )
        result: list[Accepted] = []
        for item in items:
            event_id = item.payload["event_id"]
            if event_id in inserted and firsts[event_id] is not item:
                views = tuple(sorted(claimed.get(event_id, []), key=lambda v: v.id))
                result.append(Accepted(views, (), new=False))
                continue
            if event_id not in inserted:
                result.append(
                    self.record_accepted(
                        item.payload,
                        item.lane,
                        item.planned,
                        item.settings_version,
                        now,
                        test=item.test,
                    )
                )
                continue
            views = tuple(sorted(claimed.get(event_id, []), key=lambda v: v.id))
            result.append(Accepted(views, _claimed(views, item.payload, held), True))
        return result

    def recorded_events(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the record holds (in any outcome)."""
        found: set[str] = set()
        with session_scope(self.engine) as session:
            for start in range(0, len(event_ids), 500):
                chunk = list(event_ids[start : start + 500])
                found.update(
                    session.scalars(
                        select(EventRecord.event_id).where(EventRecord.event_id.in_(chunk))
                    )
                )
        return found

    def record_failed(
        self, payload: Mapping[str, Any], lane: str, reason: str, now: datetime
    ) -> EventView:
        """Record an event that could not be planned, with the reason."""
        with session_scope(self.engine) as session:
            event, inserted = self._upsert_event(session, payload, lane, FAILED, reason, now)
            if not inserted and event.outcome == FAILED:
                event.reason = clip(reason)
            return _event_view(event)

    def _upsert_event(
        self,
        session: Session,
        payload: Mapping[str, Any],
        lane: str,
        outcome: str,
        reason: str | None,
        now: datetime,
    ) -> tuple[EventRecord, bool]:
        inserted = session.scalar(
            self._insert(EventRecord)
            .values(**_event_row(payload, lane, now, outcome, reason))
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(EventRecord.id)
        )
        event = session.scalar(
            select(EventRecord).where(EventRecord.event_id == payload["event_id"]).with_for_update()
        )
        assert event is not None
        return event, inserted is not None

    def record_rejected(
        self, event_id: str | None, reason: str, payload: object, now: datetime
    ) -> int:
        """Keep a message that was not a valid event, with why; return its id."""
        try:
            text = json.dumps(payload, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):
            text = repr(payload)
        with session_scope(self.engine) as session:
            row = RejectedMessage(
                received_at=now,
                event_id=clip(event_id, 128),
                reason=clip(reason) or "",
                payload=clip(text, MAX_PAYLOAD_EXCERPT) or "",
            )
            session.add(row)
            session.flush()
            return row.id

    def get_event(self, event_id: str) -> EventView | None:
        with session_scope(self.engine) as session:
            row = session.scalar(select(EventRecord).where(EventRecord.event_id == event_id))
            return _event_view(row) if row else None

    def rejected(self, limit: int = 100) -> list[RejectedView]:
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(RejectedMessage).order_by(RejectedMessage.id.desc()).limit(limit)
            ).all()
            return [
                RejectedView(r.id, r.received_at, r.event_id, r.reason, r.payload) for r in rows
            ]

    # Attempts ---------------------------------------------------------------

    def claim(
        self, ids: Iterable[int], now: datetime, lease: timedelta, slack: timedelta
    ) -> list[Claimed]:
        """Take the due deliveries among ``ids``; each is taken by one worker only.

        A delivery stuck in "sending" longer than ``lease`` was abandoned by a
        worker that died; it is taken over and marked uncertain, because the
        dead worker may have handed it to the SMTP server already.
        """
        wanted = list(ids)
        if not wanted:
            return []
        due = or_(
            and_(
                Delivery.status.in_(WAITING),
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now + slack),
            ),
            and_(Delivery.status == SENDING, Delivery.claimed_at < now - lease),
        )
        with session_scope(self.engine) as session:
            claimed_ids = session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(wanted), due)
                .values(
                    uncertain=or_(Delivery.uncertain, Delivery.status == SENDING),
                    status=SENDING,
                    claimed_at=now,
                    updated_at=now,
                    attempts=Delivery.attempts + 1,
                )
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            ).all()
            if not claimed_ids:
                return []
            rows = session.execute(
                select(Delivery, EventRecord.payload)
                .join(EventRecord, Delivery.event_pk == EventRecord.id)
                .where(Delivery.id.in_(claimed_ids))
                .order_by(Delivery.id)
            ).all()
            views = [(_view(row), payload) for row, payload in rows]
            held = _suppression_reasons(session.connection(), [v for v, _ in views])
            return [Claimed(v, payload, _held(v, held)) for v, payload in views]

    def finish(
        self,
        results: Sequence[AttemptResult],
        now: datetime,
        outbox: Sequence[OutboxRow] = (),
    ) -> None:
        """Apply the outcomes of attempts this worker claimed, in one transaction.

        ``outbox`` holds the webhooks that report these outcomes; each is
        written with its outcome, or not at all when another worker took the
        delivery over meanwhile (its outcome was then not this one).
        """
        if not results:
            return
        rows = [
            {
                "b_id": r.delivery_id,
                "b_status": r.status,
                "b_code": r.code,
                "b_text": clip(r.text),
                "b_next": r.next_attempt_at,
                "b_sent": r.sent_at,
                "b_uncertain": r.uncertain,
                "b_undo": 0 if r.counts else 1,
                "b_relay": r.relay,
                "b_now": now,
            }
            for r in results
        ]
        with connection_scope(self.engine) as connection:
            finished = connection.execute(_FINISH, rows)
            if outbox:
                ids = [r.delivery_id for r in results]
                counted = connection.dialect.supports_sane_multi_rowcount
                if counted and finished.rowcount == len(rows):
                    # Every outcome found its delivery still ours: the everyday
                    # case needs no second statement.
                    mine = set(ids)
                else:
                    # The rows this transaction updated carry its time; a
                    # delivery taken over meanwhile carries another.
                    mine = set(connection.scalars(_FINISHED_BY_ME, {"ids": ids, "now": now}))
                messages = [row.values(now) for row in outbox if row.delivery_id in mine]
                if messages:
                    connection.execute(_INSERT_OUTBOX, messages)

    def due(
        self, now: datetime, grace: timedelta, lease: timedelta, hold: timedelta, limit: int = 500
    ) -> list[DeliveryView]:
        """Deliveries a sweeper must enqueue again; each at most once per ``hold``.

        A waiting delivery overdue by ``grace`` lost its task (a Redis restart,
        say); one "sending" for longer than ``lease`` lost its worker, and is
        marked uncertain because that worker may have handed it over already.
        """
        stale_sending = and_(Delivery.status == SENDING, Delivery.claimed_at < now - lease)
        overdue = and_(
            Delivery.status.in_(WAITING),
            Delivery.next_attempt_at <= now - grace,
            or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < now - hold),
        )
        with session_scope(self.engine) as session:
            session.execute(
                update(Delivery)
                .where(stale_sending)
                .values(
                    status=UNKNOWN,
                    uncertain=True,
                    claimed_at=None,
                    next_attempt_at=now - grace,
                    last_text="the worker sending it stopped; sending again",
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            ids = session.scalars(
                select(Delivery.id).where(overdue).order_by(Delivery.next_attempt_at).limit(limit)
            ).all()
            if not ids:
                return []
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
            return [_view(row) for row in rows]

    # Reading ----------------------------------------------------------------

    def deliveries(self, where: DeliveryFilter | None = None) -> list[DeliveryView]:
        where = where or DeliveryFilter()
        query = select(Delivery).order_by(Delivery.id.desc())
        if where.event_id:
            query = query.where(Delivery.event_id == where.event_id)
        if where.group:
            # Group codes match regardless of case (``RETAIL`` is ``retail``);
            # deliveries carry the code as stored.
            stored = select(CustomerGroup.code).where(
                CustomerGroup.code_folded == fold_group_code(where.group)
            )
            query = query.where(
                or_(Delivery.group_code == where.group, Delivery.group_code.in_(stored))
            )
        if where.status:
            query = query.where(Delivery.status == where.status)
        if where.kind:
            query = query.where(Delivery.kind == where.kind)
        if where.recipient:
            query = query.where(Delivery.recipient == where.recipient.lower())
        query = query.limit(where.limit).offset(where.offset)
        with session_scope(self.engine) as session:
            return [_view(row) for row in session.scalars(query).all()]

    def delivery(self, delivery_id: int) -> DeliveryView | None:
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            return _view(row) if row else None

    def failed_events(self, limit: int = 100) -> list[EventView]:
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(EventRecord)
                .where(EventRecord.outcome == FAILED)
                .order_by(EventRecord.id.desc())
                .limit(limit)
            ).all()
            return [_event_view(row) for row in rows]

    def status_counts(self) -> dict[str, int]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ).all()
        counts: dict[str, int] = {status.value: 0 for status in STATUSES}
        counts.update({str(status): int(count) for status, count in rows})
        return counts

    def oldest_waiting(self) -> datetime | None:
        with session_scope(self.engine) as session:
            return session.scalar(
                select(func.min(Delivery.created_at)).where(Delivery.status.in_(WAITING))
            )

    # Dead letters -----------------------------------------------------------

    def requeue_dead(
        self, ids: Iterable[int] | None, settings_versions: Mapping[str, int], now: datetime
    ) -> list[DeliveryView]:
        """Move dead deliveries (all when ``ids`` is None) back to the queue.

        Only a delivery that is dead right now moves, so replaying the same
        dead letter twice sends it once. It renders with its group's current
        settings, since the fix for its failure is often a settings change.
        """
        query = select(Delivery).where(Delivery.status == DEAD)
        if ids is not None:
            query = query.where(Delivery.id.in_(list(ids)))
        with session_scope(self.engine) as session:
            rows = session.scalars(query.with_for_update()).all()
            for row in rows:
                row.status = QUEUED
                row.attempts = 0
                row.next_attempt_at = now
                row.updated_at = now
                row.settings_version = settings_versions.get(row.group_code, row.settings_version)
            session.flush()
            return [_view(row) for row in rows]

    # Resends ----------------------------------------------------------------

    def resend(
        self,
        original_id: int,
        now: datetime,
        settings_version: int | None,
        *,
        ignore_suppression: bool = False,
    ) -> DeliveryView:
        """Record a new delivery that sends ``original_id``'s e-mail again, due now.

        It has a Message-ID of its own (a recipient's mail program would
        otherwise hide it as a copy), renders with ``settings_version`` (the
        group's current one, since a resend often follows a fix), and points
        back at the original with ``resend_of``.
        """
        with session_scope(self.engine) as session:
            row = session.get(Delivery, original_id, with_for_update=True)
            if row is None:
                raise UnknownDelivery(original_id)
            if row.status not in FINAL:
                raise CannotResend(
                    f"delivery {original_id} is still {row.status}; a delivery is sent again "
                    "only once it is sent, dead, bounced or suppressed"
                )
            earlier = int(
                session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.event_id == row.event_id, Delivery.resend_of.is_not(None))
                )
                or 0
            )
            local, _, domain = row.message_id.strip("<>").partition("@")
            copy = Delivery(
                event_pk=row.event_pk,
                event_id=row.event_id,
                kind=row.kind,
                recipient=row.recipient,
                recipient_name=row.recipient_name,
                recipient_locale=row.recipient_locale,
                group_code=row.group_code,
                lane=row.lane,
                settings_version=settings_version or row.settings_version,
                status=QUEUED,
                attempts=0,
                message_id=f"<resend{earlier + 1}.{local}@{domain}>",
                created_at=now,
                updated_at=now,
                next_attempt_at=now,
                uncertain=False,
                test=row.test,
                resend_of=row.id,
                ignore_suppression=ignore_suppression,
            )
            session.add(copy)
            session.flush()
            return _view(copy)

    # Retention --------------------------------------------------------------

    def purge(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete finished deliveries, their events and rejected messages before ``cutoff``.

        Deliveries still waiting (queued, sending, retrying, unknown) are kept
        however old, and so is an event while any delivery of it remains.
        """

        old_deliveries = and_(Delivery.status.in_(FINAL), Delivery.updated_at < cutoff)
        has_delivery = exists().where(Delivery.event_pk == EventRecord.id)
        with session_scope(self.engine) as session:
            counts = {
                "deliveries": int(
                    session.scalar(select(func.count()).select_from(Delivery).where(old_deliveries))
                    or 0
                ),
                "rejected": int(
                    session.scalar(
                        select(func.count())
                        .select_from(RejectedMessage)
                        .where(RejectedMessage.received_at < cutoff)
                    )
                    or 0
                ),
            }
            if dry_run:
                counts["events"] = int(
                    session.scalar(
                        select(func.count())
                        .select_from(EventRecord)
                        .where(
                            EventRecord.received_at < cutoff,
                            ~exists().where(Delivery.event_pk == EventRecord.id, ~old_deliveries),
                        )
                    )
                    or 0
                )
                return counts
            session.execute(delete(Delivery).where(old_deliveries))
            result = session.execute(
                delete(EventRecord).where(EventRecord.received_at < cutoff, ~has_delivery)
            )
            counts["events"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
            session.execute(delete(RejectedMessage).where(RejectedMessage.received_at < cutoff))
            return counts
