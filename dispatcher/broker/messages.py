"""What a task message on our queues must look like before a worker takes it.

Celery trusts the shape of what it reads: a message whose headers are a list,
whose time limits are words or whose body is not the ``[args, kwargs, embed]``
triple raises deep inside the consumer, which stops the whole worker, and the
message comes back to stop the next one. Any client can send such a message
(hand-written ones in other languages do), so every message is checked here
first, as plain data, and a message that fails is recorded with the reason
and acknowledged instead of being handed to Celery.

Pure: plain dicts and lists in, a reason (or None) out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

HANDLE_EVENT = "dispatcher.handle_event"
HANDLE_EVENTS = "dispatcher.handle_events"
SEND_DELIVERY = "dispatcher.send_delivery"
TEST_SEND = "dispatcher.test_send"
SWEEP = "dispatcher.sweep"
SEND_WEBHOOKS = "dispatcher.send_webhooks"

# Keys of Celery's ``embed`` that make one task start others. Our tasks never
# use them, and a message from outside must not be able to start arbitrary
# tasks through them.
_WORKFLOW_KEYS = ("callbacks", "errbacks", "chain", "chord", "group")
_MAX_ID = 255


class BadMessage(ValueError):
    """A task message that no worker should take; its text is the reason."""


def _args_one_event(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    if len(args) != 1 or kwargs:
        raise BadMessage(
            f"a {HANDLE_EVENT} message takes exactly one positional argument, the event "
            f"object; this one had {len(args)} positional and {len(kwargs)} keyword"
        )


def _args_batch(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    if len(args) != 1 or kwargs or not isinstance(args[0], list):
        raise BadMessage(f"a {HANDLE_EVENTS} message takes one argument, a list of events")


def _args_delivery_id(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    if (
        len(args) != 1
        or kwargs
        or isinstance(args[0], bool)
        or not isinstance(args[0], int)
        or args[0] <= 0
    ):
        raise BadMessage(
            f"a {SEND_DELIVERY} message takes one argument, a delivery id (a positive integer)"
        )


def _args_test_send(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    if len(args) != 1 or kwargs or not isinstance(args[0], dict):
        raise BadMessage(f"a {TEST_SEND} message takes one argument, a JSON object")


def _args_none(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    if args or kwargs:
        raise BadMessage(
            "a dispatcher.sweep or dispatcher.send_webhooks message takes no arguments"
        )


# Every task a worker serves, with the check of its arguments.
TASK_ARGUMENTS: dict[str, Callable[[list[Any], Mapping[str, Any]], None]] = {
    HANDLE_EVENT: _args_one_event,
    HANDLE_EVENTS: _args_batch,
    SEND_DELIVERY: _args_delivery_id,
    TEST_SEND: _args_test_send,
    SWEEP: _args_none,
    SEND_WEBHOOKS: _args_none,
}


def _optional_text(headers: Mapping[str, Any], key: str) -> None:
    value = headers.get(key)
    if value is not None and not isinstance(value, str):
        raise BadMessage(f"header {key!r} must be a string or null, not {type(value).__name__}")


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _time(headers: Mapping[str, Any], key: str) -> datetime | None:
    value = headers.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadMessage(f"header {key!r} must be an ISO 8601 time or null")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadMessage(f"header {key!r} is not an ISO 8601 time: {value[:60]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_headers(headers: Any, now: datetime, max_eta_seconds: float) -> str:
    """Check Celery protocol-2 headers; return the task name or raise ``BadMessage``."""
    if not isinstance(headers, dict):
        raise BadMessage("the message headers must be a JSON object")
    task = headers.get("task")
    if not isinstance(task, str):
        raise BadMessage("header 'task' must be the task's name, a string")
    if task not in TASK_ARGUMENTS:
        raise BadMessage(f"unknown task {task[:80]!r}; the task is named {HANDLE_EVENT}")
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= _MAX_ID:
        raise BadMessage(f"header 'id' must be a string of 1-{_MAX_ID} characters")
    for key in ("root_id", "parent_id", "group", "shadow", "argsrepr", "kwargsrepr", "origin"):
        _optional_text(headers, key)
    timelimit = headers.get("timelimit")
    if timelimit is not None and (
        not isinstance(timelimit, list | tuple)
        or len(timelimit) != 2
        or not all(v is None or _number(v) for v in timelimit)
    ):
        raise BadMessage("header 'timelimit' must be [hard, soft], each seconds or null")
    retries = headers.get("retries")
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        raise BadMessage("header 'retries' must be a count, a non-negative integer")
    for key in ("ignore_result",):
        if headers.get(key) is not None and not isinstance(headers[key], bool):
            raise BadMessage(f"header {key!r} must be true, false or null")
    stamped = headers.get("stamped_headers")
    if stamped is not None and (
        not isinstance(stamped, list) or not all(isinstance(s, str) for s in stamped)
    ):
        raise BadMessage("header 'stamped_headers' must be a list of strings")
    if headers.get("stamps") is not None and not isinstance(headers["stamps"], dict):
        raise BadMessage("header 'stamps' must be a JSON object")
    eta = _time(headers, "eta")
    _time(headers, "expires")
    # A countdown longer than the broker's visibility timeout runs twice
    # (the message comes back while it waits); our own tasks never ask for
    # one, and an event is handled at once.
    if eta is not None and (eta - now).total_seconds() > max_eta_seconds:
        raise BadMessage(
            f"header 'eta' lies more than {max_eta_seconds:g} s ahead; "
            "send the message when it is due, without an eta"
        )
    return task


def check_body(task: str, body: Any) -> tuple[list[Any], dict[str, Any]]:
    """Check a decoded protocol-2 body ``[args, kwargs, embed]``; return args and kwargs."""
    if not isinstance(body, list | tuple) or len(body) != 3:
        shape = f"a list of {len(body)}" if isinstance(body, list | tuple) else type(body).__name__
        raise BadMessage(
            "the message body must be the list [args, kwargs, embed] (Celery protocol 2), "
            f"not {shape}"
        )
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        raise BadMessage("the body's args must be a list")
    if not isinstance(kwargs, dict):
        raise BadMessage("the body's kwargs must be a JSON object")
    if embed is not None and not isinstance(embed, dict):
        raise BadMessage("the body's embed must be a JSON object or null")
    for key in _WORKFLOW_KEYS:
        if embed and embed.get(key):
            raise BadMessage(
                f"the body asks for {key!r}; the dispatcher runs no callbacks, chains "
                "or chords: send each task on its own"
            )
    args = list(args)
    TASK_ARGUMENTS[task](args, kwargs)
    return args, kwargs


def check_protocol1(payload: Any, now: datetime, max_eta_seconds: float) -> str:
    """Check a Celery protocol-1 body (task, id and arguments in one object)."""
    if not isinstance(payload, dict):
        raise BadMessage("a message without a 'task' header must be a protocol-1 JSON object")
    headers = {
        key: payload.get(key)
        for key in ("task", "id", "eta", "expires", "retries", "timelimit", "group")
    }
    task = check_headers(headers, now, max_eta_seconds)
    embed = {key: payload.get(key) for key in _WORKFLOW_KEYS}
    args = payload.get("args", [])
    kwargs = payload.get("kwargs", {})
    check_body(task, [args, kwargs, embed])
    return task


def event_id_of(args: Any) -> str | None:
    """The event id of a single-event message, when it has a usable one."""
    if isinstance(args, list | tuple) and len(args) == 1 and isinstance(args[0], dict):
        value = args[0].get("event_id")
        if isinstance(value, str):
            return value[:128]
    return None
