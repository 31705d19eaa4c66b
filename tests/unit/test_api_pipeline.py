"""Events, deliveries and dead letters over HTTP, on SQLite and PostgreSQL.

The pipeline here is a recorder; ``test_api_live.py`` runs the same calls
against real Redis, a worker and an SMTP sink.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.admin.use_cases import Admin
from dispatcher.broker.publisher import BATCH_SIZE
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import AttemptResult, NewDelivery
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.settings import get_settings
from tests.conftest import require_redis
from tests.support.api_support import Api
from tests.support.stack import purge_broker

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def event(kind: EventType = EventType.PASSWORD_RESET, **changes: Any) -> dict[str, Any]:
    raw = sample_event(kind)
    raw.update(event_id=f"e-{uuid.uuid4().hex[:8]}", customer_group="RETAIL", **changes)
    return raw


# Events -------------------------------------------------------------------------


def test_one_event_is_enqueued_with_202(api: Api) -> None:
    raw = event()
    response = api.post("/v1/events", "publish", json=raw)
    assert response.status_code == 202
    assert response.json() == {"event_ids": [raw["event_id"]]}
    assert [e.event_id for e in api.pipeline.events] == [raw["event_id"]]


def test_a_list_is_enqueued_in_order(api: Api) -> None:
    batch = [event(), event(EventType.USERNAME_FORGOTTEN), event(EventType.CUSTOMER_VALIDATED)]
    response = api.post("/v1/events", "publish", json=batch)
    assert response.status_code == 202
    assert response.json()["event_ids"] == [e["event_id"] for e in batch]
    assert [e.event_id for e in api.pipeline.events] == response.json()["event_ids"]


def test_a_list_with_bad_events_enqueues_nothing_and_names_each_problem(api: Api) -> None:
    bad_contact = event()
    bad_contact["contact"] = {"email": "not an address"}
    unknown = event()
    unknown["type"] = "password.rest"
    response = api.post("/v1/events", "publish", json=[event(), bad_contact, unknown])
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["detail"]]
    assert paths == ["[1].contact.email", "[2].type"]
    assert "did you mean 'password.reset'" in response.json()["detail"][1]["message"]
    assert api.pipeline.events == []


def test_a_single_bad_event_names_its_fields(api: Api) -> None:
    raw = event()
    del raw["reset_url"]
    raw["extra"] = 1
    response = api.post("/v1/events", "publish", json=raw)
    assert response.status_code == 422
    assert {e["path"] for e in response.json()["detail"]} == {"reset_url", "extra"}


@pytest.mark.parametrize(
    ("body", "message"),
    [([], "the list is empty"), ("text", "must be a JSON object"), (5, "must be a JSON object")],
)
def test_bodies_that_are_no_events(api: Api, body: Any, message: str) -> None:
    response = api.post("/v1/events", "publish", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["message"]


def test_too_many_events_at_once_are_refused(api: Api) -> None:
    response = api.post("/v1/events", "publish", json=[event() for _ in range(1001)])
    assert response.status_code == 422
    assert "at most 1000" in response.json()["detail"][0]["message"]
    assert api.pipeline.events == []


def test_broker_down_answers_503_in_one_line(api: Api) -> None:
    api.pipeline.broker_down = True
    response = api.post("/v1/events", "publish", json=event())
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "nothing was enqueued" in detail
    assert "\n" not in detail


def test_a_broker_lost_midway_says_how_many_went_and_what_to_do(api: Api) -> None:
    api.pipeline.fail_after = 2
    response = api.post("/v1/events", "publish", json=[event() for _ in range(4)])
    assert response.status_code == 503
    assert response.json()["detail"].startswith("2 of 4 events were enqueued")
    assert "publish the whole list again" in response.json()["detail"]


# Deliveries and dead letters ---------------------------------------------------------


def record(api: Api, raw: dict[str, Any], recipient: str, *, dead: bool = False) -> int:
    records = DeliveryRecords(api.engine)
    [view] = records.record_accepted(
        raw,
        "interactive",
        [
            NewDelivery(
                kind="password.reset",
                recipient=recipient,
                recipient_name=None,
                recipient_locale="de",
                message_id=f"<{uuid.uuid4().hex}@example.com>",
                lane="interactive",
            )
        ],
        1,
        NOW,
    ).deliveries
    # Recording claims the delivery for sending at once; finish it as dead.
    if dead:
        records.finish([AttemptResult(view.id, "dead", 550, "5.1.1 no such user")], NOW)
    return view.id


def test_deliveries_are_filtered_and_paged(api: Api) -> None:
    first = event()
    ids = [record(api, event(), f"r{i}@example.com") for i in range(3)]
    dead = record(api, first, "gone@example.com", dead=True)
    page = api.get("/v1/deliveries?limit=2", "read").json()
    assert [d["id"] for d in page["items"]] == [dead, ids[2]]
    assert page["next_offset"] == 2
    last = api.get("/v1/deliveries?limit=2&offset=2", "read").json()
    assert [d["id"] for d in last["items"]] == [ids[1], ids[0]]
    assert last["next_offset"] is None
    only_dead = api.get("/v1/deliveries?status=dead").json()["items"]
    assert [(d["id"], d["last_code"], d["last_text"]) for d in only_dead] == [
        (dead, 550, "5.1.1 no such user")
    ]
    by_event = api.get(f"/v1/deliveries?event_id={first['event_id']}").json()["items"]
    assert [d["id"] for d in by_event] == [dead]
    by_recipient = api.get("/v1/deliveries?recipient=R1@example.com").json()["items"]
    assert [d["recipient"] for d in by_recipient] == ["r1@example.com"]
    by_kind = api.get("/v1/deliveries?kind=password_reset&group=RETAIL").json()["items"]
    assert len(by_kind) == 4
    assert by_kind[0]["created_at"].endswith(("Z", "+00:00"))


def test_delivery_filters_are_checked(api: Api) -> None:
    response = api.get("/v1/deliveries?status=lost&kind=nope&limit=0")
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["detail"]] == ["limit"]
    response = api.get("/v1/deliveries?status=lost&kind=nope")
    assert [e["path"] for e in response.json()["detail"]] == ["status", "kind"]


def test_dead_letters_list_dead_deliveries_failed_events_and_rejected_messages(api: Api) -> None:
    records = DeliveryRecords(api.engine)
    dead = record(api, event(), "gone@example.com", dead=True)
    record(api, event(), "fine@example.com")
    failed = event()
    records.record_failed(failed, "interactive", "customer group 'RETAIL' is not set up", NOW)
    records.record_rejected("junk-1", "not an event", {"reset_url": "https://secret"}, NOW)
    body = api.get("/v1/dead-letters", "read").json()
    assert [d["id"] for d in body["deliveries"]] == [dead]
    assert [(e["event_id"], e["reason"]) for e in body["events"]] == [
        (failed["event_id"], "customer group 'RETAIL' is not set up")
    ]
    assert [(r["event_id"], r["reason"]) for r in body["rejected"]] == [("junk-1", "not an event")]
    assert "payload" not in body["events"][0]
    assert "https://secret" not in str(body)


def test_replay_by_id_requeues_and_reports_what_it_left(api: Api) -> None:
    dead = record(api, event(), "gone@example.com", dead=True)
    alive = record(api, event(), "fine@example.com")
    response = api.post("/v1/dead-letters/replay", json={"ids": [dead, alive, 999]})
    assert response.status_code == 202
    assert response.json() == {
        "deliveries": [dead],
        "events": [],
        "skipped_deliveries": [alive, 999],
        "skipped_events": [],
    }
    assert [f.delivery_id for f in api.pipeline.scheduled] == [dead]
    records = DeliveryRecords(api.engine)
    # The dead one is queued again; the live one stays as recording left it (claimed).
    assert [records.delivery(i).status for i in (dead, alive)] == ["queued", "sending"]  # type: ignore[union-attr]
    [entry] = [e for e in api.get("/v1/audit").json() if e["action"] == "dead_letters.replay"]
    assert entry["diff"] == {"deliveries": [dead], "events": [], "all": False}
    assert entry["actor"] == "admin"


def test_replay_of_failed_events_publishes_them_again(api: Api) -> None:
    records = DeliveryRecords(api.engine)
    failed = event()
    records.record_failed(failed, "interactive", "no settings yet", NOW)
    response = api.post("/v1/dead-letters/replay", json={"events": [failed["event_id"], "unknown"]})
    assert response.status_code == 202
    assert response.json()["events"] == [failed["event_id"]]
    assert response.json()["skipped_events"] == ["unknown"]
    assert [e.event_id for e in api.pipeline.events] == [failed["event_id"]]


def test_replay_all(api: Api) -> None:
    dead = [record(api, event(), f"gone{i}@example.com", dead=True) for i in range(2)]
    response = api.post("/v1/dead-letters/replay", json={"all": True})
    assert response.status_code == 202
    assert sorted(response.json()["deliveries"]) == sorted(dead)
    again = api.post("/v1/dead-letters/replay", json={"all": True})
    assert again.json()["deliveries"] == []


@pytest.mark.parametrize(
    ("body", "path"),
    [({}, ""), ({"all": True, "ids": [1]}, "all"), ({"ids": ["x"]}, "ids.0"), ({"id": [1]}, "id")],
)
def test_replay_requests_are_checked(api: Api, body: dict[str, Any], path: str) -> None:
    response = api.post("/v1/dead-letters/replay", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["path"] == path
    assert api.pipeline.scheduled == []


def test_metrics_are_prometheus_text(api: Api) -> None:
    response = api.get("/metrics", "read")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# HELP" in response.text


def test_a_list_is_handed_over_as_one_list_not_event_by_event(api: Api) -> None:
    batch = [event() for _ in range(3)]
    assert api.post("/v1/events", "publish", json=batch).status_code == 202
    assert api.pipeline.batches == [3]


@pytest.mark.redis
def test_a_posted_list_travels_in_batches_like_publish_many(engine: Any) -> None:
    """The real pipeline: resets and validations become batch tasks per lane, BATCH_SIZE each."""

    require_redis()
    prefix = os.environ["DISPATCHER_BROKER_PREFIX"]
    purge_broker(prefix)
    admin = Admin(engine, get_settings(), CeleryPipeline(get_settings()))
    resets = [event() for _ in range(2 * BATCH_SIZE + 5)]
    validations = [event(EventType.CUSTOMER_VALIDATED) for _ in range(3)]
    ids = admin.publish([*resets, *validations])
    assert ids == [e["event_id"] for e in [*resets, *validations]]
    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    try:
        tasks: dict[str, list[list[str]]] = {}
        for queue in ("dispatcher.interactive", "dispatcher.bulk"):
            for raw in client.lrange(f"{prefix}{queue}", 0, -1):
                envelope = json.loads(raw)
                assert envelope["headers"]["task"] == "dispatcher.handle_events"
                [events], _, _ = json.loads(base64.b64decode(envelope["body"]))
                # Monitoring sees ids and types, not the people in the events.
                shown = envelope["headers"]["argsrepr"]
                assert events[0]["event_id"] in shown
                assert events[0]["contact"]["email"] not in shown
                tasks.setdefault(queue, []).append([e["event_id"] for e in events])
    finally:
        client.close()
        purge_broker(prefix)
    assert sorted(len(b) for b in tasks["dispatcher.interactive"]) == [5, BATCH_SIZE, BATCH_SIZE]
    assert [len(b) for b in tasks["dispatcher.bulk"]] == [3]
    assert sorted(i for batches in tasks.values() for b in batches for i in b) == sorted(ids)
