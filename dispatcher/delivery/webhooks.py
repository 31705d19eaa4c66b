"""Webhooks to the portal backend: a durable outbox, and its sender (CONTRACT §8).

Each outcome's webhooks are written in the same transaction as the outcome
itself (``DeliveryRecords.finish``, the bounce record), so none is lost and
none is announced for an outcome that was not recorded. A task on its own lane
sends what is due, signed as the Standard Webhooks specification defines;
failures are retried with backoff for ``DISPATCHER_WEBHOOK_RETRY_HOURS``.
Delivery is at least once: a receiver recognises a repeat by ``webhook-id``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import urllib3
from sqlalchemy import Engine, Table, and_, func, or_, select, update
from standardwebhooks.webhooks import Webhook

from config_store.database import connection_scope, session_scope
from dispatcher.delivery.models import WebhookMessage
from dispatcher.delivery.views import DeliveryView
from dispatcher.domain.statuses import WebhookStatus, WebhookType
from dispatcher.settings import Settings

log = logging.getLogger("dispatcher.webhooks")

MAX_ERROR = 500
# Webhooks the receiver took are recorded this many at a time (see send_due).
DELIVERED_EVERY = 10
# POSTs in flight at once per sending process, each on its own kept connection.
# One at a time, a round's wall time was a receiver's round trip per webhook,
# and the pool process sending it took no e-mails meanwhile.
CONCURRENCY = 4
# Receivers' logs name us; urllib3 would say "python-urllib3/2.x".
USER_AGENT = "portal-dispatcher-webhooks"


@dataclass(frozen=True)
class OutboxRow:
    """A webhook to write with an outcome: its endpoint, type and JSON body."""

    webhook_id: str
    endpoint: str
    event_type: WebhookType
    delivery_id: int | None
    payload: Mapping[str, Any]

    def values(self, now: datetime) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "endpoint": self.endpoint,
            "event_type": self.event_type.value,
            "delivery_id": self.delivery_id,
            "payload": dict(self.payload),
            "status": WebhookStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }


@dataclass(frozen=True)
class WebhookView:
    id: int
    webhook_id: str
    endpoint: str
    event_type: str
    delivery_id: int | None
    payload: Mapping[str, Any]
    status: WebhookStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_OUTBOX = cast(Table, WebhookMessage.__table__)
_DELIVERED = update(_OUTBOX).values(
    status=WebhookStatus.DELIVERED.value,
    attempts=_OUTBOX.c.attempts + 1,
    claimed_at=None,
    next_attempt_at=None,
    last_error=None,
)


def _view(row: Any) -> WebhookView:
    """A view of an outbox row, an ORM object or a Core row alike."""
    created = _aware(row.created_at)
    assert created is not None
    return WebhookView(
        row.id,
        row.webhook_id,
        row.endpoint,
        row.event_type,
        row.delivery_id,
        row.payload,
        WebhookStatus(row.status),
        row.attempts,
        created,
        _aware(row.next_attempt_at),
        _aware(row.delivered_at),
        row.last_error,
    )


def endpoints(config: Settings) -> tuple[str, ...]:
    """The receivers' URLs (``DISPATCHER_WEBHOOK_URL``, comma-separated); none: webhooks off."""
    return config.webhook_endpoints


def outcome_rows(
    targets: Sequence[str],
    event_type: WebhookType,
    delivery: DeliveryView,
    status: str,
    when: datetime,
    *,
    code: int | None,
    text: str | None,
    attempts: int,
    relay: str | None,
    extra: Mapping[str, Any] | None = None,
) -> list[OutboxRow]:
    """The webhooks of one outcome, one per endpoint, each with its own ``webhook-id``."""
    if not targets:
        return []
    data: dict[str, Any] = {
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "kind": delivery.kind,
        "group": delivery.group,
        "recipient": delivery.recipient,
        "status": status,
        "smtp_code": code,
        "smtp_text": text,
        "attempts": attempts,
        "relay": relay,
        **(extra or {}),
    }
    body = {"type": event_type.value, "timestamp": when.isoformat(), "data": data}
    return [
        OutboxRow(f"msg_{uuid.uuid4().hex}", url, event_type, delivery.id, body) for url in targets
    ]


def retry_delay(attempts: int, base: float, ceiling: float) -> float:
    """Seconds to wait after ``attempts`` failed sends: base·2^(n-1), at most ``ceiling``."""
    return float(min(ceiling, base * 2 ** max(0, attempts - 1)))


class WebhookOutbox:
    """The outbox table: claim what is due, record what a send did, list and replay."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[WebhookView]:
        """Take pending messages that are due; a claim held longer than ``lease`` lapses."""
        due = and_(
            WebhookMessage.status == WebhookStatus.PENDING.value,
            WebhookMessage.next_attempt_at <= now,
            or_(WebhookMessage.claimed_at.is_(None), WebhookMessage.claimed_at < now - lease),
        )
        # One round trip: choose what is due and claim it by id. Two senders
        # asking at once each get their own: on PostgreSQL the second skips the
        # rows the first has locked (a row changed meanwhile is checked again
        # against the condition when it is locked); on SQLite the statement
        # runs under the single writer's lock. The choice is a materialised CTE
        # and the UPDATE names rows by id only, so that the choice runs once and
        # each row is found by its key: as "id IN (subquery) AND <condition>",
        # PostgreSQL planned a semi join that ran the LIMIT subquery again for
        # every pending row (2,000 pending: 360 ms, and all of them claimed
        # instead of 100), and then compared every pending row with the chosen.
        chosen = (
            select(WebhookMessage.id)
            .where(due)
            .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("chosen")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        with connection_scope(self.engine) as connection:
            rows = connection.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id.in_(select(chosen.c.id)))
                .values(claimed_at=now)
                .returning(*_OUTBOX.c)
            ).all()
        return sorted((_view(row) for row in rows), key=lambda view: view.id)

    def delivered(self, message_ids: Sequence[int], now: datetime) -> None:
        """Record messages the receiver took, in one statement."""
        if not message_ids:
            return
        with connection_scope(self.engine) as connection:
            connection.execute(
                _DELIVERED.where(_OUTBOX.c.id.in_(message_ids)).values(delivered_at=now)
            )

    def failed(
        self, message: WebhookView, error: str, now: datetime, retry_at: datetime | None
    ) -> None:
        """Record a failed send: again at ``retry_at``, or given up (``None``)."""
        with session_scope(self.engine) as session:
            session.execute(
                update(WebhookMessage)
                .where(WebhookMessage.id == message.id)
                .values(
                    status=(
                        WebhookStatus.PENDING.value
                        if retry_at is not None
                        else WebhookStatus.FAILED.value
                    ),
                    attempts=WebhookMessage.attempts + 1,
                    claimed_at=None,
                    next_attempt_at=retry_at,
                    last_error=error[:MAX_ERROR],
                )
            )

    def messages(
        self,
        status: WebhookStatus | None = None,
        delivery_id: int | None = None,
        limit: int = 100,
    ) -> list[WebhookView]:
        query = select(WebhookMessage).order_by(WebhookMessage.id.desc()).limit(limit)
        if status is not None:
            query = query.where(WebhookMessage.status == status.value)
        if delivery_id is not None:
            query = query.where(WebhookMessage.delivery_id == delivery_id)
        with session_scope(self.engine) as session:
            return [_view(row) for row in session.scalars(query).all()]

    def states_of(self, delivery_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        """Per delivery, how many of its webhooks are pending, delivered and failed."""
        wanted = list(set(delivery_ids))
        if not wanted:
            return {}
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(WebhookMessage.delivery_id, WebhookMessage.status, func.count())
                .where(WebhookMessage.delivery_id.in_(wanted))
                .group_by(WebhookMessage.delivery_id, WebhookMessage.status)
            ).all()
        states: dict[int, dict[str, int]] = {}
        for delivery_id, status, count in rows:
            if delivery_id is not None:
                states.setdefault(delivery_id, {})[status] = int(count)
        return states

    def replay(self, ids: Iterable[int] | None, now: datetime) -> list[int]:
        """Make failed messages (all when ``ids`` is None) pending again, due now."""
        query = update(WebhookMessage).where(WebhookMessage.status == WebhookStatus.FAILED.value)
        if ids is not None:
            query = query.where(WebhookMessage.id.in_(list(ids)))
        with session_scope(self.engine) as session:
            return list(
                session.scalars(
                    query.values(
                        status=WebhookStatus.PENDING.value,
                        next_attempt_at=now,
                        claimed_at=None,
                        # A replay restarts the retry period.
                        created_at=now,
                        attempts=0,
                    )
                    .returning(WebhookMessage.id)
                    .execution_options(synchronize_session=False)
                ).all()
            )

    def counts(self) -> dict[str, int]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(WebhookMessage.status, func.count()).group_by(WebhookMessage.status)
            ).all()
        found = {status.value: 0 for status in WebhookStatus}
        found.update({str(status): int(count) for status, count in rows})
        return found

    def due_count(self, now: datetime) -> int:
        with session_scope(self.engine) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(WebhookMessage)
                    .where(
                        WebhookMessage.status == WebhookStatus.PENDING.value,
                        WebhookMessage.next_attempt_at <= now,
                    )
                )
                or 0
            )


# What a webhook is posted through: a proxy's manager, or the endpoint's own pool.
Pool = urllib3.PoolManager | urllib3.HTTPConnectionPool


def _close(pool: Pool) -> None:
    if isinstance(pool, urllib3.PoolManager):
        pool.clear()
    else:
        pool.close()


@dataclass(frozen=True)
class SendResult:
    delivered: int
    retried: int
    failed: int


class WebhookSender:
    """Signs and posts due webhooks; one instance (one HTTP connection pool) per process."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        config: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.clock = clock
        secret = config.webhook_secret.get_secret_value() if config.webhook_secret else ""
        self.signer = Webhook(secret) if secret else None
        # urllib3 rather than httpx: a POST cost 0.27 ms of CPU against 0.42
        # (bench.features counts one per e-mail). Its pools are thread-safe and
        # keep a connection per lane. No retries and no redirects: a failure is
        # recorded and retried with backoff, and a receiver answers where asked.
        self._options: dict[str, Any] = {
            "maxsize": CONCURRENCY,
            "timeout": urllib3.Timeout(config.webhook_timeout_seconds),
            "retries": False,
        }
        self._routes: dict[str, tuple[Pool, str]] = {}
        self._lanes: ThreadPoolExecutor | None = None

    def route(self, endpoint: str) -> tuple[Pool, str]:
        """The pool that reaches ``endpoint`` and what its request line names: through
        the proxy the environment names (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, as curl and
        httpx read them) with the whole URL, or the endpoint's own pool with the path."""
        route = self._routes.get(endpoint)
        if route is None:
            parts = urlsplit(endpoint)
            # Settings refuse other schemes, but a row written under an older,
            # mistyped setting must fail here, not go out unencrypted:
            # urllib3's connection_from_url takes anything but https for http.
            if parts.scheme not in ("http", "https"):
                raise urllib3.exceptions.URLSchemeUnknown(parts.scheme)
            proxy = urllib.request.getproxies().get(parts.scheme)
            if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
                # Credentials in the proxy's URL become its Proxy-Authorization.
                auth = urlsplit(proxy)
                headers = (
                    urllib3.make_headers(
                        proxy_basic_auth=f"{unquote(auth.username)}:{unquote(auth.password or '')}"
                    )
                    if auth.username
                    else None
                )
                manager = urllib3.ProxyManager(proxy, proxy_headers=headers, **self._options)
                route = (manager, endpoint)
            else:
                # A connection pool of the endpoint's own, asked with the path:
                # a PoolManager parsed the URL and looked its pool up again for
                # every POST, a quarter of the sender's CPU per webhook.
                pool = urllib3.connection_from_url(endpoint, **self._options)
                route = (pool, urllib3.util.parse_url(endpoint).request_uri)
            # Lanes may race here: the first route stays, the loser's pool is closed.
            kept = self._routes.setdefault(endpoint, route)
            if kept is not route:
                _close(route[0])
            route = kept
        return route

    def close(self) -> None:
        for pool, _ in self._routes.values():
            _close(pool)
        # A closed pool refuses every request: the next use makes new ones.
        self._routes.clear()
        if self._lanes is not None:
            self._lanes.shutdown(wait=False)

    def send_due(self, limit: int = 100) -> SendResult:
        """Send what is due now; return how it went."""
        lease = timedelta(seconds=self.config.webhook_timeout_seconds * 3)
        messages = self.outbox.claim_due(self.clock(), lease, limit)
        delivered = retried = failed = 0
        # An endpoint that failed once this round is not asked again in it: a
        # receiver that is down would otherwise cost a timeout per message.
        down: dict[str, str] = {}
        # Deliveries are written DELIVERED_EVERY at a time: one commit per
        # webhook had cost as much as the webhook. A sender killed in between
        # sends those again when their claim lapses (at least once, as
        # Standard Webhooks receivers expect; they recognise the webhook-id).
        taken: list[int] = []
        for message, error in self._post_all(messages, down):
            now = self.clock()
            if error is None:
                taken.append(message.id)
                delivered += 1
                if len(taken) >= DELIVERED_EVERY:
                    self.outbox.delivered(taken, now)
                    taken = []
                continue
            give_up = message.created_at + timedelta(hours=self.config.webhook_retry_hours)
            delay = retry_delay(
                message.attempts + 1,
                self.config.webhook_retry_base_seconds,
                self.config.webhook_retry_max_seconds,
            )
            retry_at = now + timedelta(seconds=delay)
            if retry_at > give_up:
                log.warning(
                    "webhook %s to %s given up after %d attempts: %s",
                    message.webhook_id,
                    message.endpoint,
                    message.attempts + 1,
                    error,
                )
                self.outbox.failed(message, error, now, None)
                failed += 1
            else:
                self.outbox.failed(message, error, now, retry_at)
                retried += 1
        self.outbox.delivered(taken, self.clock())
        return SendResult(delivered, retried, failed)

    def _post_all(
        self, messages: Sequence[WebhookView], down: dict[str, str]
    ) -> Iterator[tuple[WebhookView, str | None]]:
        """POST messages, up to ``CONCURRENCY`` at once; each with why it failed, or None.

        A delivery's webhooks go in one lane, in order, so that a receiver
        sees its "delayed" before its "sent". Results come in chunks, in the
        order of ``messages`` within each, so that they are recorded as they come.
        """
        if len(messages) <= 1:
            for message in messages:
                yield message, self._post_unless_down(message, down)
            return
        if self._lanes is None:
            self._lanes = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="webhooks")
        step = DELIVERED_EVERY * CONCURRENCY
        for start in range(0, len(messages), step):
            chunk = messages[start : start + step]
            lanes: list[list[WebhookView]] = [[] for _ in range(CONCURRENCY)]
            for message in chunk:
                key = message.delivery_id if message.delivery_id is not None else -message.id
                lanes[key % len(lanes)].append(message)
            errors: dict[int, str | None] = {}
            # Each lane runs in a copy of this context, so that traces follow.
            futures = [
                self._lanes.submit(contextvars.copy_context().run, self._post_lane, lane, down)
                for lane in lanes
                if lane
            ]
            for future in futures:
                errors.update(future.result())
            for message in chunk:
                yield message, errors[message.id]

    def _post_lane(
        self, lane: Sequence[WebhookView], down: dict[str, str]
    ) -> dict[int, str | None]:
        return {m.id: self._post_unless_down(m, down) for m in lane}

    def _post_unless_down(self, message: WebhookView, down: dict[str, str]) -> str | None:
        error = down.get(message.endpoint) or self._post(message)
        if error is not None:
            down[message.endpoint] = error
        return error

    def _post(self, message: WebhookView) -> str | None:
        """POST one message; None when the receiver took it (2xx), else why not."""
        body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
        stamp = self.clock()
        headers = {
            "content-type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "user-agent": USER_AGENT,
        }
        if self.signer is not None:
            headers["webhook-signature"] = self.signer.sign(message.webhook_id, stamp, body)
        try:
            # A proxy URL urllib3 cannot use (HTTPS_PROXY=ftp://...) or an endpoint
            # that does not parse (a row written under an older setting) fails
            # this message with the reason, retried like any failure, instead of
            # the whole round with a traceback.
            pool, target = self.route(message.endpoint)
            response = pool.urlopen(
                "POST", target, body=body.encode(), headers=headers, redirect=False
            )
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status < 300:
            return None
        text = response.data[:200].decode("utf-8", "replace")
        return f"HTTP {response.status}: {text}"
