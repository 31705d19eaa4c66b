"""No response ever carries the SMTP password, a token or a token's hash."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import AttemptResult, NewDelivery
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.settings import Settings
from tests.support.api_support import RecordingPipeline, make_client
from tests.support.documents import full

MARKER = f"smtp-password-{uuid.uuid4().hex}"


def test_no_response_contains_a_secret(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_SMTP_USERNAME", "mailer")
    monkeypatch.setenv("DISPATCHER_SMTP_PASSWORD", MARKER)
    config = Settings(database_url=str(engine.url))
    assert config.smtp_password is not None
    assert config.smtp_password.get_secret_value() == MARKER
    access = AccessStore(engine)
    secrets = {
        scope: access.create_token(f"{scope}-user", scope).secret
        for scope in ("read", "admin", "publish")
    }
    access.revoke("read-user")
    forbidden = [MARKER]
    for secret in secrets.values():
        forbidden += [secret, hashlib.sha256(secret.encode()).hexdigest()]
    pipeline = RecordingPipeline()
    seen: list[str] = []

    with make_client(engine, pipeline, config=config) as client:

        def call(method: str, path: str, token: str | None = "admin", **kwargs: Any) -> Any:
            headers = kwargs.pop("headers", {})
            if token:
                headers["Authorization"] = f"Bearer {secrets[token]}"
            response = client.request(method, path, headers=headers, **kwargs)
            seen.append(
                f"{method} {path} {response.status_code}\n{response.headers}\n{response.text}"
            )
            return response

        get: Callable[..., Any] = lambda path, token="admin", **kw: call("GET", path, token, **kw)  # noqa: E731
        post: Callable[..., Any] = lambda path, token="admin", **kw: call("POST", path, token, **kw)  # noqa: E731
        # Successes.
        post("/v1/groups", json={"code": "RETAIL", "name": "Retail"})
        call("PUT", "/v1/groups/RETAIL/settings", json=full())
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/v1/groups",
            "/v1/groups/RETAIL",
            "/v1/groups/RETAIL/settings",
            "/v1/groups/RETAIL/settings?format=yaml",
            "/v1/groups/RETAIL/settings?effective=true&locale=en",
            "/v1/groups/RETAIL/settings/history",
            "/v1/deliveries",
            "/v1/dead-letters",
            "/v1/audit",
            "/",
        ):
            assert get(path).status_code == 200, path
        post("/v1/groups/RETAIL/preview", json={"kind": "password.reset", "document": full()})
        post(
            "/v1/groups/RETAIL/test-send",
            json={"kind": "password.reset", "address": "a@example.com"},
        )
        raw = sample_event(EventType.PASSWORD_RESET)
        assert post("/v1/events", "publish", json=raw).status_code == 202
        records = DeliveryRecords(engine)
        planned = NewDelivery(
            "password.reset", "a@example.com", None, None, "<m@example.com>", "interactive"
        )
        [view] = records.record_accepted(
            raw, "interactive", [planned], 1, datetime.now(UTC)
        ).deliveries
        # Recording claims the delivery for sending at once; finish it as dead.
        records.finish(
            [AttemptResult(view.id, "dead", 535, "5.7.8 authentication failed")], datetime.now(UTC)
        )
        assert post("/v1/dead-letters/replay", json={"all": True}).status_code == 202
        post("/v1/groups/RETAIL/settings/rollback", json={"version": 1})
        # The web UI's session.
        signed = client.post("/ui/session", json={"token": secrets["admin"]})
        seen.append(f"{signed.headers}\n{signed.text}")
        seen.append(client.get("/ui/session").text)
        # Failures of every kind.
        get("/v1/groups", None)
        get("/v1/groups", "read")  # revoked
        call("PUT", "/v1/groups/RETAIL/settings", "publish", json=full())
        call(
            "PUT", "/v1/groups/RETAIL/settings", json={"internal_addresses": {"send_from": MARKER}}
        )
        get("/v1/groups/NOPE")
        post("/v1/groups", json={"code": "RETAIL", "name": "Again"})
        pipeline.broker_down = True
        post("/v1/events", "publish", json=raw)
        get("/readyz")
        client.get("/v1/groups", headers={"Authorization": f"Bearer {secrets['admin']}x"})

    assert len(seen) > 30
    for text in seen:
        for secret in forbidden:
            # This includes the refused sender address above: the address
            # checks say what is wrong, without repeating the value.
            assert secret not in text, text[:300]
