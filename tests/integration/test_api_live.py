"""The API as a real ``dispatcher api`` process: readiness, metrics, broker outages, and the
whole path through Redis, a worker and an SMTP sink (test send, events, dead-letter replay).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from dispatcher.admin.access import AccessStore
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.support.api_server import SERVER_SECRET, ApiServer, prepare_site
from tests.support.documents import full
from tests.support.harness import free_port
from tests.support.stack import Stack, running_stack

MARKER = f"smtp-password-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    """A server whose broker is down (nothing listens on its port)."""
    directory = tmp_path_factory.mktemp("api-offline")
    env = {
        "DISPATCHER_DATABASE_URL": f"sqlite:///{directory / 'api.db'}",
        "DISPATCHER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DISPATCHER_SMTP_PASSWORD": MARKER,
        "DISPATCHER_API_SECRET": SERVER_SECRET,
    }
    tokens = prepare_site(directory, env)
    server = ApiServer(directory, env).start()
    try:
        yield server, tokens
    finally:
        server.stop()


def test_readiness_reports_the_broker_down_and_health_stays_up(
    offline: tuple[ApiServer, dict[str, str]],
) -> None:
    server, tokens = offline
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        anonymous = client.get("/readyz")
        ready = client.get("/readyz", headers={"Authorization": f"Bearer {tokens['read']}"})
    # Anonymous callers learn only that it is down, not where the broker lives.
    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "unavailable", "database": None, "broker": None}
    assert ready.status_code == 503
    body = ready.json()
    assert body["database"] == "ok"
    assert body["broker"].startswith("cannot reach Redis at redis://127.0.0.1:")
    assert MARKER not in ready.text


def test_publishing_with_the_broker_down_answers_503_in_one_line(
    offline: tuple[ApiServer, dict[str, str]],
) -> None:
    server, tokens = offline
    event = sample_event(EventType.PASSWORD_RESET)
    with server.client(tokens["publish"]) as client:
        response = client.post("/v1/events", json=event)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "nothing was enqueued" in detail
    assert "\n" not in detail
    assert MARKER not in response.text


def test_metrics_need_a_read_token_and_show_the_state(
    offline: tuple[ApiServer, dict[str, str]],
) -> None:
    server, tokens = offline
    with server.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with server.client(tokens["publish"]) as publisher:
        assert publisher.get("/metrics").status_code == 403
    with server.client(tokens["read"]) as reader:
        response = reader.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.search(r"^dispatcher_database_up 1(\.0)?$", response.text, re.MULTILINE)
    assert re.search(r"^dispatcher_broker_up 0(\.0)?$", response.text, re.MULTILINE)
    assert MARKER not in response.text


def test_the_web_ui_ships_every_asset_itself(offline: tuple[ApiServer, dict[str, str]]) -> None:
    server, _ = offline
    with server.client() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets
        for asset in assets:
            assert asset.startswith(("/static/", "#", "data:")), asset
        texts = [page.text]
        for asset in (a for a in assets if a.startswith("/static/")):
            response = client.get(asset)
            assert response.status_code == 200, asset
            texts.append(response.text)
    for text in texts:
        assert not re.search(r"""(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//""", text)
        assert "@import" not in text


# The whole path ---------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, ApiServer, dict[str, str]]]:
    directory = tmp_path_factory.mktemp(f"api-live-{request.param}")
    with running_stack(request.param, directory) as stack:
        access = AccessStore(stack.engine)
        tokens = {s: access.create_token(f"live-{s}", s).secret for s in ("publish", "admin")}
        server = ApiServer(directory, {**stack.env, "DISPATCHER_API_SECRET": SERVER_SECRET})
        server.start()
        try:
            yield stack, server, tokens
        finally:
            server.stop()


@pytest.mark.integration
def test_a_group_configured_over_http_sends_tests_events_and_replays(
    live: tuple[Stack, ApiServer, dict[str, str]],
) -> None:
    stack, server, tokens = live
    code = f"G{uuid.uuid4().hex[:8]}"
    with server.client(tokens["admin"]) as admin, server.client(tokens["publish"]) as backend:
        assert admin.get("/readyz").json()["status"] == "ok"
        assert admin.post("/v1/groups", json={"code": code, "name": "Live"}).status_code == 201
        assert admin.put(f"/v1/groups/{code}/settings", json=full()).status_code == 200

        # A test send travels the real path and is marked as a test.
        address = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        sent = admin.post(
            f"/v1/groups/{code}/test-send", json={"kind": "password.reset", "address": address}
        )
        assert sent.status_code == 202
        [row] = stack.wait_status(sent.json()["event_id"], {"sent"})
        assert (row.test, row.recipient) == (True, address)
        listed = admin.get(f"/v1/deliveries?event_id={sent.json()['event_id']}").json()
        assert [(d["status"], d["test"]) for d in listed["items"]] == [("sent", True)]
        assert stack.sink.messages(address)

        # An event whose first attempt bounces becomes a dead letter; replayed, it is sent.
        bounce = f"bounce-{uuid.uuid4().hex[:6]}@example.com"
        stack.sink.set_faults(
            [{"match": bounce, "stage": "data", "code": 550, "text": "no such user", "times": 1}]
        )
        event = sample_event(EventType.PASSWORD_RESET)
        event.update(
            event_id=f"live-{uuid.uuid4().hex[:8]}",
            customer_group=code,
            contact={"email": bounce, "name": "Bounce"},
        )
        assert backend.post("/v1/events", json=[event]).status_code == 202
        [dead] = stack.wait_status(event["event_id"], {"dead"})
        letters = admin.get("/v1/dead-letters").json()
        assert dead.id in [d["id"] for d in letters["deliveries"]]
        replay = admin.post("/v1/dead-letters/replay", json={"ids": [dead.id]})
        assert replay.status_code == 202
        assert replay.json()["deliveries"] == [dead.id]
        stack.wait_status(event["event_id"], {"sent"})
        assert stack.sink.messages(bounce)
        actions = [e["action"] for e in admin.get("/v1/audit").json()]
        assert {"group.add", "settings.save", "test_send", "dead_letters.replay"} <= set(actions)
