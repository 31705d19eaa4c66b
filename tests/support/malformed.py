"""Malformed queue items, as a hand-written client in another language might send them.

Each entry is a name and the raw bytes pushed onto a Redis queue. The shapes
cover the kombu envelope (its JSON, its properties, the body encoding), the
Celery protocol-2 headers (task, id, time limits, ETA, retries) and the body
(the ``[args, kwargs, embed]`` triple and each task's arguments).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

GOOD_EVENT: dict[str, Any] = {
    "event_id": "malformed-probe",
    "type": "password.reset",
    "customer_group": "RETAIL",
    "contact": {"email": "probe@example.com"},
    "reset_url": "https://portal.example.com/reset/x",
}


def envelope(
    body: Any = ((GOOD_EVENT,), {}, {}),
    *,
    task: Any = "dispatcher.handle_event",
    queue: str = "dispatcher.bulk",
    headers: Any = None,
    properties: Any = None,
    encode_body: bool = True,
    content_type: Any = "application/json",
    content_encoding: Any = "utf-8",
    **overrides: Any,
) -> bytes:
    """A kombu envelope for a Celery protocol-2 message, with parts replaced."""
    task_id = str(uuid.uuid4())
    head: Any = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "timelimit": [None, None],
        "eta": None,
        "expires": None,
        "argsrepr": "",
        "kwargsrepr": "",
        "origin": "malformed@test",
    }
    if isinstance(headers, dict):
        head.update(headers)
    elif headers is not None:
        head = headers
    props: Any = {
        "correlation_id": task_id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    if isinstance(properties, dict):
        props.update(properties)
    elif properties is not None:
        props = properties
    raw_body: Any = body
    if encode_body:
        text = json.dumps(body)
        raw_body = base64.b64encode(text.encode()).decode()
    item: dict[str, Any] = {
        "body": raw_body,
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": head,
        "properties": props,
    }
    item.update(overrides)
    return json.dumps(item).encode()


# Shapes that are odd but usable: the worker handles them as ordinary messages
# (kombu ignores the content encoding of a text body; a missing routing key is
# the queue's own name). Every other shape is recorded as rejected.
HANDLED = frozenset({"unknown content-encoding", "delivery_info empty"})


def corpus() -> list[tuple[str, bytes]]:
    """Every malformed shape, named; all but ``HANDLED`` are invalid task messages."""
    event = GOOD_EVENT
    shapes: list[tuple[str, bytes]] = [
        # The envelope itself.
        ("not json", b"\x00\xff\xfe garbage"),
        ("json number", b"42"),
        ("json list", b"[1, 2, 3]"),
        ("envelope without properties", json.dumps({"body": "x"}).encode()),
        ("properties a list", envelope(properties=[1, 2])),
        ("delivery_info a list", envelope(properties={"delivery_info": [1]})),
        ("delivery_info empty", envelope(properties={"delivery_info": {}})),
        ("routing_key a number", envelope(properties={"delivery_info": {"routing_key": 5}})),
        ("delivery_tag a list", envelope(properties={"delivery_tag": [1]})),
        ("unknown body_encoding", envelope(properties={"body_encoding": "rot13"})),
        ("body not base64", envelope("%%% not base64 %%%", encode_body=False)),
        ("body a number", envelope(12, encode_body=False, properties={"body_encoding": None})),
        ("priority a word", envelope(properties={"priority": "high"})),
        ("content-type a list", envelope(content_type=["application/json"])),
        ("content-type pickle", envelope(content_type="application/x-python-serialize")),
        ("content-type text", envelope(content_type="text/plain")),
        ("unknown content-encoding", envelope(content_encoding="klingon")),
        # Celery's headers.
        ("headers a list", envelope(headers=["task", "dispatcher.handle_event"])),
        ("headers a string", envelope(headers="dispatcher.handle_event")),
        ("task a number", envelope(task=7)),
        ("task a list", envelope(task=["dispatcher.handle_event"])),
        ("unknown task", envelope(task="os.system")),
        ("id missing", envelope(headers={"id": None})),
        ("id a dict", envelope(headers={"id": {"a": 1}})),
        ("timelimit words", envelope(headers={"timelimit": ["a", "b"]})),
        ("timelimit a string", envelope(headers={"timelimit": "soon"})),
        ("timelimit three numbers", envelope(headers={"timelimit": [1, 2, 3]})),
        ("eta not a date", envelope(headers={"eta": "tomorrow-ish"})),
        ("eta year 9999", envelope(headers={"eta": "9999-12-31T23:59:59+00:00"})),
        ("expires a list", envelope(headers={"expires": [1]})),
        ("retries a word", envelope(headers={"retries": "many"})),
        ("argsrepr a dict", envelope(headers={"argsrepr": {"a": 1}})),
        # The body.
        ("body a dict", envelope({"weird": 1})),
        ("body null", envelope(None)),
        ("body a string", envelope("abc")),
        ("body two items", envelope([[event], {}])),
        ("body four items", envelope([[event], {}, {}, {}])),
        ("args not a list", envelope([event, {}, {}])),
        ("kwargs a list", envelope([[event], [], {}])),
        ("embed a string", envelope([[event], {}, "x"])),
        ("callbacks to another task", envelope([[event], {}, {"callbacks": [{"task": "x"}]}])),
        ("chain garbage", envelope([[event], {}, {"chain": "x"}])),
        ("two arguments", envelope([[event, event], {}, {}])),
        ("keyword arguments", envelope([[], {"event": event}, {}])),
        ("batch not a list", envelope([[event], {}, {}], task="dispatcher.handle_events")),
        ("delivery id a word", envelope([["abc"], {}, {}], task="dispatcher.send_delivery")),
        ("test send a list", envelope([[[1]], {}, {}], task="dispatcher.test_send")),
        ("sweep with arguments", envelope([[1, 2], {}, {}], task="dispatcher.sweep")),
        (
            "protocol 1 garbage",
            json.dumps(
                {
                    "body": "e30=",
                    "headers": {},
                    "properties": {
                        "delivery_tag": "p1",
                        "body_encoding": "base64",
                        "delivery_info": {},
                    },
                    "content-type": "application/json",
                    "content-encoding": "utf-8",
                }
            ).encode(),
        ),
    ]
    return shapes
