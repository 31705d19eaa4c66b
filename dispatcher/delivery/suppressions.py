"""The suppression list: addresses no e-mail goes to, installation-wide (CONTRACT §8).

Hard bounces put an address here; administrators add and remove addresses by
hand. The pipeline asks once per batch of claimed deliveries, with one
indexed query, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from config_store.database import session_scope
from dispatcher.delivery.models import Suppression
from dispatcher.domain.addresses import parse_mailbox
from dispatcher.errors import DispatcherError

MAX_REASON = 1000


@dataclass(frozen=True)
class SuppressionView:
    address: str
    reason: str
    since: datetime
    source_delivery_id: int | None
    created_by: str


class NotSuppressed(DispatcherError):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"{address} is not on the suppression list; nothing was removed")


def normalize(address: str) -> str:
    """The form deliveries record a recipient in; raise ``ValueError`` for a bad address."""
    return parse_mailbox(address).address.lower()


def _view(row: Suppression) -> SuppressionView:
    since = row.since if row.since.tzinfo else row.since.replace(tzinfo=UTC)
    return SuppressionView(row.address, row.reason, since, row.source_delivery_id, row.created_by)


def insert_suppression(
    session: Session,
    address: str,
    reason: str,
    actor: str,
    now: datetime,
    source_delivery_id: int | None = None,
) -> bool:
    """Put ``address`` on the list inside the caller's transaction; False if it was there.

    An address already on the list keeps its first reason and date: the
    first hard bounce is what the administrator needs to see.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = session.scalar(
        insert(Suppression)
        .values(
            address=address,
            reason=reason[:MAX_REASON],
            since=now,
            source_delivery_id=source_delivery_id,
            created_by=actor[:200],
        )
        .on_conflict_do_nothing(index_elements=["address"])
        .returning(Suppression.id)
    )
    return inserted is not None


class SuppressionList:
    """Reads and writes of the suppression list; results are plain dataclasses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        address: str,
        reason: str,
        actor: str,
        now: datetime,
        source_delivery_id: int | None = None,
    ) -> tuple[SuppressionView, bool]:
        """Suppress ``address``; return its entry and whether it is new."""
        key = normalize(address)
        with session_scope(self.engine) as session:
            created = insert_suppression(session, key, reason, actor, now, source_delivery_id)
            row = session.scalar(select(Suppression).where(Suppression.address == key))
            assert row is not None
            return _view(row), created

    def remove(self, address: str) -> SuppressionView:
        """Take ``address`` off the list; raise ``NotSuppressed`` if it is not on it."""
        key = normalize(address)
        with session_scope(self.engine) as session:
            row = session.scalar(select(Suppression).where(Suppression.address == key))
            if row is None:
                raise NotSuppressed(key)
            view = _view(row)
            session.execute(delete(Suppression).where(Suppression.id == row.id))
            return view

    def get(self, address: str) -> SuppressionView | None:
        with session_scope(self.engine) as session:
            row = session.scalar(
                select(Suppression).where(Suppression.address == normalize(address))
            )
            return _view(row) if row else None

    def entries(
        self, search: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[SuppressionView], int]:
        """Entries newest first, optionally those whose address or reason contains ``search``."""
        query = select(Suppression)
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                or_(Suppression.address.like(pattern), func.lower(Suppression.reason).like(pattern))
            )
        with session_scope(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(Suppression.since.desc(), Suppression.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return [_view(row) for row in rows], total

    def reasons(self, addresses: Iterable[str]) -> dict[str, str]:
        """Which of ``addresses`` (as deliveries record them) are suppressed, and why."""
        wanted = sorted({a.lower() for a in addresses})
        if not wanted:
            return {}
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Suppression.address, Suppression.reason).where(
                    Suppression.address.in_(wanted)
                )
            ).all()
        return {str(address): str(reason) for address, reason in rows}
