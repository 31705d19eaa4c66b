"""How the admin side hands work to the workers: the broker, or a stand-in in tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import redis
from kombu.exceptions import OperationalError

from dispatcher.broker import publisher
from dispatcher.broker.queues import redis_client
from dispatcher.domain.events import Event
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.errors import BrokerUnavailable, DispatcherError
from dispatcher.settings import Settings, redact_url


class Pipeline(Protocol):
    """How the admin side hands work to the workers."""

    def enqueue_event(self, event: Event) -> None: ...

    def enqueue_events(self, events: Sequence[Event]) -> None: ...

    def enqueue_test_send(
        self, group: str, kind: str, address: str, locale: str | None, actor: str
    ) -> str: ...

    def schedule(self, follow_ups: Sequence[FollowUp]) -> None: ...

    def send_webhooks(self) -> None: ...

    def broker_problem(self) -> str | None: ...


class CeleryPipeline:
    """The real pipeline: Celery over the configured Redis."""

    def __init__(self, config: Settings) -> None:
        self.config = config

    def enqueue_event(self, event: Event) -> None:
        publisher.enqueue(event)

    def enqueue_events(self, events: Sequence[Event]) -> None:
        publisher.enqueue_many(events)

    def enqueue_test_send(
        self, group: str, kind: str, address: str, locale: str | None, actor: str
    ) -> str:
        return publisher.publish_test_send(group, kind, address, locale, actor)

    def schedule(self, follow_ups: Sequence[FollowUp]) -> None:
        try:
            publisher.schedule(follow_ups)
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(
                f"the deliveries are queued again in the database, but the broker is not "
                f"reachable ({exc}); the sweeper sends them once Redis is back"
            ) from None

    def send_webhooks(self) -> None:
        # Asked for by an operator (a replay): no reason to wait for more.
        publisher.send_webhooks_soon(gather=0)

    def broker_problem(self) -> str | None:
        try:
            client = redis_client(self.config)
        except DispatcherError as exc:
            return str(exc)
        try:
            client.ping()
        except redis.RedisError as exc:
            return (
                f"cannot reach Redis at {redact_url(self.config.broker_url)}: {exc}; check "
                "DISPATCHER_BROKER_URL and that Redis is running"
            )
        finally:
            client.close()
        return None
