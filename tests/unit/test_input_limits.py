"""Bounded input, in-process: nesting, values, problem lists, request bodies,
template output, encoded-words, and the server's log filter.

The same limits against the real ``dispatcher api`` server are in
``tests/integration/test_api_limits.py``.
"""

from __future__ import annotations

import email
import email.policy
import errno
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from starlette.exceptions import HTTPException

from config_store.document import (
    MAX_NESTING,
    MAX_VALUES,
    load,
    structure_problem,
    validate_document,
)
from dispatcher.api import app as api_app
from dispatcher.api.app import MAX_PROBLEMS, SMALL_BODY_BYTES, json_structure_problem
from dispatcher.api.routes.common import MAX_BODY_BYTES
from dispatcher.cli.serve import RepeatedResourceErrors, connection_cap, log_config
from dispatcher.domain.addresses import AddressProblem, Mailbox, parse_mailbox
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.texts import ResolvedText
from dispatcher.domain.textsafety import first_forbidden, looks_encoded, single_line_problem
from dispatcher.errors import DispatcherError, InvalidDocument, TemplateProblem
from dispatcher.mail.render import RenderedEmail, RenderFailed, build_message, render_email
from dispatcher.mail.templating import render_text
from tests.support.api_support import Api
from tests.support.documents import full
from tests.support.mailheaders import limit_problems, mailbox_of

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SENDER = Mailbox("portal@example.com", "Kundenportal")


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_mapping(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


# Nesting and values -----------------------------------------------------------


def test_structures_up_to_the_limit_pass_and_one_level_more_is_refused() -> None:
    assert structure_problem(json.loads(nested_list(MAX_NESTING))) is None
    problem = structure_problem(json.loads(nested_list(MAX_NESTING + 1)))
    assert problem == "nests lists and mappings more than 32 levels deep; the limit is 32"
    assert structure_problem(json.loads(nested_mapping(MAX_NESTING + 1))) == problem


def test_the_number_of_values_is_bounded() -> None:
    assert structure_problem(list(range(MAX_VALUES))) is None
    assert structure_problem(list(range(MAX_VALUES + 1))) == (
        "holds more than 50000 values; the limit is 50000"
    )
    # The list counts as a value of its own.
    assert structure_problem({"a": [1, 2, 3]}, max_values=4) is None
    assert structure_problem({"a": [1, 2, 3]}, max_values=3) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (nested_list(500), "at line 1, column 33: nests lists and mappings more than 32 levels"),
        (nested_mapping(1000), "nests lists and mappings more than 32 levels deep"),
        (nested_list(100_000), "the limit is 32"),
        (
            "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v\n",
            "at line 33, column 65: nests lists and mappings more than 32 levels deep",
        ),
        ("? [a, b]\n: 1\n", "a key must be plain text or a number, not a list or mapping"),
        ("{? {a: 1} : 1}\n", "a key must be plain text or a number, not a list or mapping"),
        ("{[1, 2]: x}\n", "a key must be plain text or a number, not a list or mapping"),
        ("&a [*a]\n", "nests lists and mappings more than 32 levels deep"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "holds more than 50000 values; the limit is 50000",
        ),
    ],
    ids=[
        "yaml-500",
        "json-1000",
        "json-100000",
        "yaml-block-100",
        "complex-key",
        "complex-key-flow",
        "list-key",
        "recursive-alias",
        "alias-bomb",
    ],
)
def test_hostile_yaml_and_json_are_refused_in_one_line(text: str, expected: str) -> None:
    started = time.monotonic()
    with pytest.raises(DispatcherError) as caught:
        load(text, "file.yaml")
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert message.startswith("file.yaml: cannot read the settings")
    assert expected in message
    assert "\n" not in message


def test_ordinary_documents_still_load() -> None:
    document = full()
    assert load(json.dumps(document)) == document
    assert load("a: {b: [1, 2]}\n1: x\n") == {"a": {"b": [1, 2]}, 1: "x"}


def test_a_json_body_is_checked_without_recursion() -> None:
    assert json_structure_problem(nested_list(100_000).encode(), MAX_VALUES) == (
        "nests lists and mappings more than 32 levels deep; the limit is 32"
    )
    assert json_structure_problem(b"not json", MAX_VALUES) is None
    assert json_structure_problem(b'{"a": [1, 2]}', MAX_VALUES) is None


# The API in-process ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("PUT", "/v1/groups/RETAIL/settings", "admin"),
        ("POST", "/v1/events", "publish"),
        ("POST", "/v1/groups/RETAIL/preview", "read"),
        ("POST", "/ui/session", None),
        ("POST", "/v1/groups/RETAIL/settings/rollback", "admin"),
    ],
)
@pytest.mark.parametrize("body", [nested_list(1000), nested_mapping(900), nested_list(33)])
def test_deep_json_answers_422_naming_the_limit(
    api: Api, method: str, path: str, scope: str | None, body: str
) -> None:
    api.add_group()
    headers = {"Content-Type": "application/json", **(api.auth(scope) if scope else {})}
    response = api.client.request(method, path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [
            {
                "path": "",
                "message": "the body nests lists and mappings more than 32 levels deep; "
                "the limit is 32",
            }
        ]
    }


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/yaml", nested_list(500)),
        ("application/yaml", "? [a, b]\n: 1\n"),
        ("application/yaml", "{? {a: 1} : 1}\n"),
        ("text/plain", nested_mapping(900)),
    ],
)
def test_deep_or_complex_settings_bodies_answer_422(api: Api, content_type: str, body: str) -> None:
    api.add_group()
    response = api.put(
        "/v1/groups/RETAIL/settings", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["path"] == ""
    assert "32 levels" in problem["message"] or "a key must be plain" in problem["message"]


def test_a_declared_body_over_the_limit_answers_413_before_it_is_read(api: Api) -> None:
    response = api.client.post(
        "/ui/session",
        content=b"x" * (SMALL_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "the request body is larger than 262144 bytes, the most this endpoint takes; "
        "send a smaller one"
    }
    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_streamed_body_over_the_limit_answers_413(api: Api) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b" " * (32 * 1024)

    response = api.client.post(
        "/ui/session", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "262144 bytes" in response.json()["detail"]
    assert response.headers["connection"] == "close"


def test_documents_may_be_larger_than_other_bodies(api: Api) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    events = [{**event, "event_id": f"e-{i}", "customer_group": "RETAIL"} for i in range(1000)]
    body = json.dumps(events).encode()
    assert SMALL_BODY_BYTES < len(body) < MAX_BODY_BYTES
    response = api.post(
        "/v1/events", scope="publish", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    too_big = api.post(
        "/v1/events",
        scope="publish",
        content=b" " * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    assert "5242880 bytes" in too_big.json()["detail"]


def test_too_many_values_answer_422(api: Api) -> None:
    body = {"token": "x", **{f"k{i}": 1 for i in range(20_000)}}
    response = api.client.post("/ui/session", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"path": "", "message": "the body holds more than 10000 values; the limit is 10000"}
    ]


def test_validation_answers_list_at_most_50_problems(api: Api) -> None:
    body = {"token": "x", **{f"k{i}": 1 for i in range(9_000)}}
    started = time.monotonic()
    response = api.client.post("/ui/session", json=body)
    assert time.monotonic() - started < 5
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_PROBLEMS + 1
    assert detail[0] == {"path": "k0", "message": "Extra inputs are not permitted"}
    assert detail[-1] == {
        "path": "",
        "message": "and 8950 more problems not listed; fix these first",
    }
    assert len(response.content) < 10_000

    event = sample_event(EventType.PASSWORD_RESET)
    event.update({f"x{i}": 1 for i in range(3_000)})
    response = api.post("/v1/events", scope="publish", json=event)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_PROBLEMS + 1
    assert detail[-1]["message"] == "and 2950 more problems not listed; fix these first"


def test_422_answers_never_echo_huge_or_unencodable_input(api: Api) -> None:
    api.add_group()
    document = {"internal_addresses": {"\ud800": 1}, "k" * 100_000: 1}
    response = api.put(
        "/v1/groups/RETAIL/settings",
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert len(response.content) < 5_000
    for problem in response.json()["detail"]:
        assert len(problem["path"]) <= 200
        assert len(problem["message"]) <= 500
    body = '{"kind": "password.reset", "\\ud800": 1}'
    response = api.post(
        "/v1/groups/RETAIL/preview", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_a_slow_body_is_given_up_with_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_app, "BODY_SECONDS", 0.2)

    async def slow_receive() -> dict[str, Any]:
        await anyio.sleep(5)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def read() -> None:
        guarded = api_app._GuardedBody(slow_receive, 100, 100, json_body=True)
        await guarded.receive()

    started = time.monotonic()
    with pytest.raises(HTTPException) as caught:
        anyio.run(read)
    assert time.monotonic() - started < 2
    assert caught.value.status_code == 408
    assert caught.value.headers == {"Connection": "close"}


# Template output ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "char"),
    [
        ("{{ '\\ud800' }}", "U+D800 (a lone surrogate, which is no character)"),
        ("Hallo {{ '\\udfff' ~ contact.name }}", "U+DFFF"),
        ("{{ '\\x07' }}", "U+0007"),
        ("{{ '\\x1b[31m' }}", "U+001B"),
        ("{{ '\\r' }}Bcc: x@example.com", "U+000D"),
        ("{{ '\\u202e' }}", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("{{ '\\u200b' }}", "U+200B ZERO WIDTH SPACE"),
        ("{{ '\\x00' }}", "U+0000"),
    ],
)
def test_templates_that_print_control_characters_or_surrogates_fail(source: str, char: str) -> None:
    context = {"contact": {"email": "a@example.com", "name": "Anna"}}
    with pytest.raises(TemplateProblem) as caught:
        render_text(source, context)
    assert char in str(caught.value)
    assert "a text may print visible characters, line breaks and tabs only" in str(caught.value)


@pytest.mark.parametrize("field", ["subject", "body"])
def test_such_templates_are_refused_at_save(field: str) -> None:
    document = full()
    document["password_reset"][field] = "Hallo {{ '\\ud800' }}"
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    [error] = caught.value.errors
    assert error.path == f"password_reset.{field}"
    assert "U+D800" in error.message


def test_render_email_names_the_field_and_build_message_refuses_what_it_cannot_send() -> None:
    text = ResolvedText(
        kind="password.reset",
        locale="de",
        subject="Hallo",
        body="{{ '\\x07' }}",
        subject_source="group",
        body_source="group",
    )
    with pytest.raises(RenderFailed) as caught:
        render_email(text, {"group": {"code": "G", "name": "G"}})
    assert caught.value.field == "body"
    email_ = RenderedEmail(subject="Hallo", text="Text\n", html="<p>Text</p>", locale="de")
    for sender, recipient, rendered in [
        (SENDER, Mailbox("a@example.com", "Anna\ud800"), email_),
        (SENDER, Mailbox("a@example.com", "Anna\r\nBcc: x@example.com"), email_),
        (SENDER, Mailbox("a@example.com"), RenderedEmail("Hi\x1b", "x\n", "x", "de")),
        (SENDER, Mailbox("a@example.com"), RenderedEmail("Hi", "x\ud800\n", "x", "de")),
    ]:
        with pytest.raises(TemplateProblem):
            build_message(rendered, sender, recipient, "<id@example.com>", NOW)


# Passes the trial render at save (the sample user is "anna.schmidt"), fails
# with the one event whose username it was written for.
TRAP = "{% if username == 'x' %}{{ '\\x07' }}{% endif %}Ihr Benutzername: {{ username }}"


def test_a_preview_that_prints_a_control_character_answers_422(api: Api) -> None:
    api.add_group()
    document = full()
    document["forgotten_username"]["body"] = TRAP
    assert api.save(document).status_code == 200
    event = sample_event(EventType.USERNAME_FORGOTTEN)
    event.update(customer_group="RETAIL", username="x")
    response = api.post(
        "/v1/groups/RETAIL/preview", json={"kind": "username.forgotten", "event": event}
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["path"] == "event"
    assert "prints the invisible or control character U+0007" in problem["message"]
    draft = full()
    draft["forgotten_username"]["subject"] = "{{ '\\ud800' }}"
    response = api.post(
        "/v1/groups/RETAIL/preview", json={"kind": "username.forgotten", "document": draft}
    )
    assert response.status_code == 422, response.text
    assert "U+D800" in response.text


# Encoded-words -----------------------------------------------------------------------

ENCODED = [
    "=?utf-8?q?Bank=0D=0AReply-To:_evil@example.com?=",
    "=?utf-8?b?QmFuaw0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=",
    "=?utf-8?q?=E2=80=AEmoc.elpmaxe?=",
    "Anna =?iso-8859-1?q?Pr=FCfer?= und =?utf-8?Q?Bob?=",
    "=?us-ascii*en?q?x?=",
]


@pytest.mark.parametrize("value", ENCODED)
def test_encoded_words_in_names_and_subjects_reach_the_reader_literally(value: str) -> None:
    rendered = RenderedEmail(subject=f"Ihr Zugang: {value}", text="x\n", html="x", locale="de")
    recipient = Mailbox("a@example.com", value)
    built = build_message(rendered, SENDER, recipient, "<id@example.com>", NOW)
    raw = built.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == f"Ihr Zugang: {value}"
    [to] = parsed["To"].addresses
    # Decoded as RFC 2047 says (a long name spans several encoded-words).
    assert mailbox_of(raw, "To") == (value, "a@example.com")
    assert to.addr_spec == "a@example.com"
    assert limit_problems(raw) == []
    assert parsed["Reply-To"] is None
    assert parsed["Bcc"] is None
    # Every header is one line, and no header carries the value unencoded.
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert value not in head


def test_ordinary_names_and_subjects_are_not_encoded_needlessly() -> None:
    rendered = RenderedEmail(subject="Ihr Zugang", text="x\n", html="x", locale="de")
    built = build_message(
        rendered, SENDER, Mailbox("a@example.com", "Anna Muster"), "<id@example.com>", NOW
    )
    assert built["Subject"] == "Ihr Zugang"
    assert built["To"] == "Anna Muster <a@example.com>"


def test_an_encoded_word_in_the_sender_name_is_refused_at_save() -> None:
    with pytest.raises(AddressProblem, match="encoded-word"):
        parse_mailbox("=?utf-8?q?Bank?= <portal@example.com>", allow_display_name=True)
    document = full()
    document["internal_addresses"]["send_from"] = '"=?utf-8?q?Bank?=" <portal@example.com>'
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    assert [e.path for e in caught.value.errors] == ["internal_addresses.send_from"]


def test_text_checks() -> None:
    assert looks_encoded("=?utf-8?q?x?=")
    assert not looks_encoded("Fragen? Antworten = Hilfe")
    assert first_forbidden("Grüße\u00a0aus Zürich\n\tund \U0001f600", allow_newlines=True) is None
    assert first_forbidden("a\ud800") == "U+D800 (a lone surrogate, which is no character)"
    assert single_line_problem("x\u2028y") == (
        "contains the invisible or control character U+2028 LINE SEPARATOR; remove it"
    )


# The server's logging and connection cap ----------------------------------------------


def _record(exc: BaseException | None, name: str = "asyncio") -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, "accept failed", (), exc_info)


def test_resource_errors_are_logged_once_per_interval() -> None:
    now = [100.0]
    log_filter = RepeatedResourceErrors(interval=60, clock=lambda: now[0])
    emfile = OSError(errno.EMFILE, "Too many open files")
    assert log_filter.filter(_record(emfile))
    assert not any(log_filter.filter(_record(emfile)) for _ in range(1000))
    # Another logger, another errno and other errors are not held back.
    assert log_filter.filter(_record(emfile, "uvicorn.error"))
    assert log_filter.filter(_record(OSError(errno.ENFILE, "File table overflow")))
    assert log_filter.filter(_record(OSError(errno.ECONNRESET, "reset")))
    assert log_filter.filter(_record(None))
    now[0] += 61
    record = _record(emfile)
    assert log_filter.filter(record)
    assert record.getMessage() == (
        "accept failed (1000 more like it in the last 60 s were not logged)"
    )


def test_accept_retries_after_the_server_closed_are_not_logged() -> None:
    log_filter = RepeatedResourceErrors(interval=60, clock=lambda: 0.0)
    closed = ValueError("Invalid file descriptor: -1")
    retry = logging.LogRecord(
        "asyncio",
        logging.ERROR,
        __file__,
        1,
        "Exception in callback BaseSelectorEventLoop._start_serving(...)",
        (),
        (ValueError, closed, None),
    )
    assert not log_filter.filter(retry)
    # Other errors of the kind still are.
    assert log_filter.filter(_record(ValueError("Invalid file descriptor: -1")))


def test_the_log_configuration_filters_asyncio_and_uvicorn() -> None:
    config = log_config()
    assert config["loggers"]["asyncio"]["filters"] == ["resource_errors"]
    assert config["loggers"]["uvicorn.error"]["filters"] == ["resource_errors"]
    assert config["filters"]["resource_errors"]["()"] is RepeatedResourceErrors


@pytest.mark.parametrize(
    ("open_files", "cap"), [(64, 32), (1024, 668), (4096, 1000), (1_048_576, 1000)]
)
def test_connections_stay_below_the_open_file_limit(open_files: int, cap: int) -> None:
    assert connection_cap(open_files) == cap
