"""Helpers for admin API tests: a client of the real app, a recording pipeline.

The ``api`` fixture that uses them is in ``tests/unit/conftest.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from dispatcher.api import create_app, routes, ui
from dispatcher.api.config import ApiSettings
from dispatcher.domain.events import Event
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.errors import BrokerUnavailable, PartlyEnqueued
from dispatcher.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for the httpx2 package, which this project does not
    # depend on yet; plain httpx works the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SECRET = "test-secret-" + "x" * 40
SCOPES = ("publish", "read", "admin")


@dataclass
class RecordingPipeline:
    """Takes what the API hands to the workers; fails like a lost broker on demand."""

    events: list[Event] = field(default_factory=list)
    test_sends: list[dict[str, Any]] = field(default_factory=list)
    scheduled: list[FollowUp] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    webhook_rounds: int = 0
    broker_down: bool = False
    fail_after: int | None = None

    def enqueue_event(self, event: Event) -> None:
        if self.broker_down or (
            self.fail_after is not None and len(self.events) >= self.fail_after
        ):
            raise BrokerUnavailable(
                "cannot reach the broker at redis://127.0.0.1:1/0 (refused); nothing was "
                "enqueued: check DISPATCHER_BROKER_URL and that Redis is running"
            )
        self.events.append(event)

    def enqueue_events(self, events: Sequence[Event]) -> None:
        """Like ``publish_many``: one call for the list, failing midway on demand."""
        self.batches.append(len(events))
        for done, event in enumerate(events):
            try:
                self.enqueue_event(event)
            except BrokerUnavailable:
                if done == 0:
                    raise
                raise PartlyEnqueued(
                    done, len(events), "cannot reach the broker at redis://127.0.0.1:1/0"
                ) from None

    def enqueue_test_send(
        self, group: str, kind: str, address: str, locale: str | None, actor: str
    ) -> str:
        if self.broker_down:
            raise BrokerUnavailable("cannot reach the broker (refused); nothing was enqueued")
        event_id = f"test-{len(self.test_sends) + 1}"
        self.test_sends.append(
            {
                "group": group,
                "kind": kind,
                "address": address,
                "locale": locale,
                "actor": actor,
                "event_id": event_id,
            }
        )
        return event_id

    def schedule(self, follow_ups: Sequence[FollowUp]) -> None:
        self.scheduled.extend(follow_ups)

    def send_webhooks(self) -> None:
        self.webhook_rounds += 1

    def broker_problem(self) -> str | None:
        return "cannot reach Redis at redis://127.0.0.1:1/0: refused" if self.broker_down else None


@dataclass
class Api:
    """A client of the app, with a token of each scope (named after the scope)."""

    client: TestClient
    engine: Engine
    pipeline: RecordingPipeline
    tokens: dict[str, str]

    @property
    def access(self) -> AccessStore:
        return AccessStore(self.engine)

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def get(self, path: str, scope: str = "admin", **kwargs: Any) -> Any:
        return self.client.get(
            path, headers={**self.auth(scope), **kwargs.pop("headers", {})}, **kwargs
        )

    def post(self, path: str, scope: str = "admin", **kwargs: Any) -> Any:
        return self.client.post(
            path, headers={**self.auth(scope), **kwargs.pop("headers", {})}, **kwargs
        )

    def put(self, path: str, scope: str = "admin", **kwargs: Any) -> Any:
        return self.client.put(
            path, headers={**self.auth(scope), **kwargs.pop("headers", {})}, **kwargs
        )

    def add_group(self, code: str = "RETAIL", name: str = "Retail customers") -> None:
        response = self.post("/v1/groups", json={"code": code, "name": name})
        assert response.status_code == 201, response.text

    def save(self, document: dict[str, Any], code: str = "RETAIL", scope: str = "admin") -> Any:
        return self.put(f"/v1/groups/{code}/settings", scope=scope, json=document)


def api_routes() -> list[APIRoute]:
    """Every route of the app, from the routers that define them."""

    found = [*routes.router.routes, *ui.router.routes]
    return [route for route in found if isinstance(route, APIRoute)]


def make_client(
    engine: Engine,
    pipeline: RecordingPipeline | None = None,
    config: Settings | None = None,
    api_settings: ApiSettings | None = None,
) -> TestClient:
    app = create_app(
        engine=engine,
        config=config or Settings(database_url=str(engine.url)),
        api_settings=api_settings or ApiSettings(secret=SECRET),
        pipeline=pipeline or RecordingPipeline(),
    )
    return TestClient(app, base_url="http://testserver")
