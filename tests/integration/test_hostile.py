"""Hostile input, from corpora built from public knowledge: refused or harmless.

Templates (sandbox escapes, resource exhaustion), header injection, malformed
and internationalised addresses, huge values and hostile Unicode, both at
save time (settings) and at publish time (events); then the same through a
real worker, which must stay healthy.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config_store.document import effective_settings, load, validate_document
from dispatcher import publish
from dispatcher.broker.app import app
from dispatcher.broker.publisher import TASK_NAME
from dispatcher.domain.addresses import Mailbox, parse_mailbox
from dispatcher.domain.events import parse_event
from dispatcher.domain.kinds import KIND_BY_NAME, EventType
from dispatcher.domain.samples import sample_event
from dispatcher.errors import DispatcherError, InvalidDocument, InvalidEvent, TemplateProblem
from dispatcher.mail.preview import preview
from dispatcher.mail.render import build_message
from tests.support.documents import addresses_only, full
from tests.support.harness import wait_for
from tests.support.mailheaders import limit_problems, mailbox_of
from tests.support.stack import raw_push, running_stack

CORPORA = Path(__file__).resolve().parents[1] / "support" / "corpora"
TEMPLATES = [
    line
    for line in (CORPORA / "templates.txt").read_text("utf-8").splitlines()
    if line and not line.startswith("#")
]
# What must never appear in a rendered e-mail: Python internals, the
# environment, files.
LEAKS = [
    "<class",
    "<function",
    "<built-in",
    "<module",
    "__globals__",
    "root:x:0:0",
    os.environ.get("HOME", "/root"),
    "uid=",
    "PATH=",
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("field", ["subject", "body"])
def test_hostile_templates_are_refused_at_save_or_render_harmlessly(
    template: str, field: str
) -> None:
    document = full()
    document["password_reset"][field] = template
    started = time.monotonic()
    errors: list[Any] = []
    try:
        validated = validate_document(document)
    except InvalidDocument as exc:
        errors = list(exc.errors)
    assert time.monotonic() - started < 10
    if errors:
        # Refused: one clear message on that field, nothing else.
        assert [e.path for e in errors] == [f"password_reset.{field}"]
        assert errors[0].message
        assert "\n" not in errors[0].message
        return
    settings = effective_settings(validated, "G", "Group", 1)
    try:
        result = preview(settings, KIND_BY_NAME["password.reset"], "de")
    except TemplateProblem:
        return
    rendered = result.email.subject + result.email.text + result.email.html
    for leak in LEAKS:
        assert leak not in rendered, (template, leak)


INJECTIONS = [
    "Passwort\r\nBcc: victim@example.com",
    "Passwort\nBcc: victim@example.com",
    "Passwort\rBcc: victim@example.com",
    "Passwort\u2028Bcc: victim@example.com",
    "Passwort\u0085Bcc",
    "Passwort\x00",
    "Rechnung \u202egpj.exe",
    "Zero\u200bwidth",
    "BOM\ufeff",
]


@pytest.mark.parametrize("subject", INJECTIONS)
def test_header_injection_in_subjects_is_refused(subject: str) -> None:
    document = full()
    document["password_reset"]["subject"] = subject
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    [error] = caught.value.errors
    assert error.path == "password_reset.subject"


def test_a_quoted_display_name_stays_one_mailbox() -> None:
    mailbox = parse_mailbox(
        '"Evil <evil@example.com>, victim@example.com" <portal@example.com>',
        allow_display_name=True,
    )
    assert mailbox.address == "portal@example.com"
    assert mailbox.header() == '"Evil <evil@example.com>, victim@example.com" <portal@example.com>'


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_injection_in_sender_display_names_is_refused(value: str) -> None:
    document = full()
    document["internal_addresses"]["send_from"] = f'"{value}" <portal@example.com>'
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    assert [e.path for e in caught.value.errors] == ["internal_addresses.send_from"]


ADDRESSES = [
    ("plain@example.com", True),
    ("user+tag@example.com", True),
    ("user@bücher.example", True),
    ("user@xn--bcher-kva.example", True),
    ("jörg@example.com", False),
    ("@example.com", False),
    ("user@", False),
    ("user@@example.com", False),
    ("user@example..com", False),
    ("user@-example.com", False),
    ("user name@example.com", False),
    ("user@example.com\r\nBcc: victim@example.com", False),
    ("user@example.com\x00", False),
    ('"quoted"@example.com', False),
    ("user@[127.0.0.1]", False),
    ("user@localhost", False),
    ("a" * 65 + "@example.com", False),
    ("user@" + "a" * 250 + ".com", False),
    ("user@example.com>", False),
    ("<user@example.com>", False),
    ("user@exa\u202emple.com", False),
]


@pytest.mark.parametrize(("address", "valid"), ADDRESSES)
def test_addresses_in_events(address: str, valid: bool) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event["contact"] = {"email": address}
    if valid:
        parse_event(event)
        return
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert [e.path for e in caught.value.errors] == ["contact.email"]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Anna\r\nBcc: victim@example.com"),
        ("name", "Anna\x00"),
        ("name", "Anna \u202eevil"),
        ("name", "Ann\u200ba"),
        ("name", "x" * 10_000),
        ("locale", "de\r\nX"),
        ("locale", "x" * 1000),
    ],
)
def test_hostile_contact_fields_are_refused_at_publish(field: str, value: str) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event["contact"] = {"email": "a@example.com", field: value}
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert [e.path for e in caught.value.errors] == [f"contact.{field}"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"reset_url": "https://example.com/" + "a" * 1_000_000}, "reset_url"),
        ({"reset_url": "javascript:alert(document.cookie)"}, "reset_url"),
        ({"reset_url": "https://example.com/\r\nX-Injected: 1"}, "reset_url"),
        ({"username": "x" * 1_000_000}, "username"),
        ({"event_id": "e" * 10_000}, "event_id"),
        ({"event_id": "id\x00"}, "event_id"),
        ({"customer_group": "../../etc"}, "customer_group"),
        ({"expires_at": "9" * 10_000}, "expires_at"),
    ],
)
def test_huge_and_hostile_event_values_are_refused(changes: dict[str, Any], path: str) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(changes)
    started = time.monotonic()
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert time.monotonic() - started < 2
    assert [e.path for e in caught.value.errors] == [path]
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("body", "x" * 1_000_000, "is too long; use at most 20000 characters"),
        ("subject", "x" * 10_000, "is too long; use at most 255 characters"),
    ],
)
def test_huge_texts_are_refused_at_save(field: str, value: str, message: str) -> None:
    document = addresses_only()
    document["password_reset"] = {field: value}
    started = time.monotonic()
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    assert time.monotonic() - started < 2
    assert [(e.path, e.message) for e in caught.value.errors] == [
        (f"password_reset.{field}", message)
    ]


def test_event_values_are_escaped_in_html_and_kept_off_headers() -> None:
    settings = effective_settings(validate_document(full()), "G", "Group", 1)
    event = sample_event(EventType.USERNAME_FORGOTTEN)
    event["contact"] = {"email": "a@example.com", "name": '<img src=x onerror=alert(1)> "Eve"'}
    event["username"] = "<script>alert('x')</script>"
    result = preview(settings, KIND_BY_NAME["username.forgotten"], "de", event)
    assert "<script>" not in result.email.html
    assert "<img" not in result.email.html
    assert "&lt;script&gt;" in result.email.html
    assert result.to == '"<img src=x onerror=alert(1)> \\"Eve\\"" <a@example.com>'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack("sqlite", tmp_path_factory.mktemp("hostile")) as s:
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


@pytest.mark.integration
def test_the_worker_stays_healthy_under_hostile_queue_messages(stack: Any) -> None:
    before = len(stack.records.rejected(limit=10_000))
    hostile: list[object] = [
        {**sample_event(EventType.PASSWORD_RESET), "contact": {"email": "a@b\r\nBcc: x@y.z"}},
        {**sample_event(EventType.PASSWORD_RESET), "username": "x" * 1_000_000},
        {"event_id": "\u202e" * 100, "type": "password.reset"},
        {"type": {"nested": ["deep" * 1000]}},
        None,
        [1, 2, 3],
        "x" * 100_000,
    ]
    for item in hostile:
        app.send_task(TASK_NAME, args=[item], queue="dispatcher.interactive")
    raw_push("dispatcher.interactive", b"\x00\xff\xfe garbage")
    raw_push("dispatcher.bulk", b'{"body": 1}')

    wait_for(
        lambda: len(stack.records.rejected(limit=10_000)) >= before + len(hostile) + 2,
        60,
        "every hostile message to be recorded as rejected",
    )
    # Still healthy: a valid event with awkward but legal values goes through.
    address = f"ok-{uuid.uuid4().hex[:6]}@bücher.example"
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"h-{uuid.uuid4().hex}",
        customer_group="RETAIL",
        contact={"email": address, "name": 'Zoë "Z" <Ünïcödé>', "locale": "de-CH"},
    )
    publish(event)
    stack.wait_status(event["event_id"], {"sent"})
    [entry] = stack.sink.messages(
        "ok-" + address.split("ok-")[1].split("@", maxsplit=1)[0] + "@xn--bcher-kva.example"
    )
    message = email.message_from_bytes(stack.sink.eml(entry), policy=email.policy.default)
    assert message["To"].addresses[0].display_name == 'Zoë "Z" <Ünïcödé>'
    assert stack.worker.process.poll() is None


# RFC 2047 encoded-words, characters made at render time, nesting -----------------

# Text that a mail program would decode, were it written into a header as it
# is: line breaks and further headers, a bidirectional override, a different
# name. Event data and templates may contain it; it reaches the recipient as
# the literal text, encoded once more on output.
ENCODED_WORDS = [
    "=?utf-8?q?Anna=0D=0AReply-To:_evil@example.com?=",
    "=?utf-8?b?QW5uYQ0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=",
    "=?utf-8?q?=E2=80=AEmoc.elpmaxe?=",
    "=?utf-8?q?Ihre_Bank?= =?utf-8?q?_<security@bank.example>?=",
    "Anna =?iso-8859-1?q?Pr=FCfer?=",
    "=?utf-8*de?Q?Support?=",
]


def _decoded_headers(message: email.message.Message) -> dict[str, str]:
    return {name.lower(): str(value) for name, value in message.items()}


@pytest.mark.parametrize("value", ENCODED_WORDS)
def test_encoded_words_in_event_data_reach_the_reader_as_text(value: str) -> None:
    event = sample_event(EventType.ACCESS_REQUESTED)
    event["contact"] = {"email": "a@example.com", "name": value}
    event["customer"] = {"id": "C-1", "name": value}
    parsed = parse_event(event)  # accepted: it is text
    assert parsed.contact.name == value
    kind = KIND_BY_NAME["access_request.customer"]
    document = full()
    document["customer_access_request"]["subject"] = "Zugang für {{ customer.name }}"
    settings = effective_settings(validate_document(document), "G", "Group", 1)
    result = preview(settings, kind, "de", event)
    assert value in result.email.subject
    built = build_message(
        result.email,
        parse_mailbox(settings.send_from, allow_display_name=True),
        Mailbox("a@example.com", value),
        "<id@example.com>",
        datetime(2026, 11, 27, tzinfo=UTC),
    )
    raw = built.as_bytes()
    reader = email.message_from_bytes(raw, policy=email.policy.default)
    assert reader["Subject"] == f"Zugang für {value}"
    # Decoded as RFC 2047 says (a long name spans several encoded-words).
    assert mailbox_of(raw, "To") == (value, "a@example.com")
    assert reader["To"].addresses[0].addr_spec == "a@example.com"
    assert limit_problems(raw) == []
    headers = _decoded_headers(reader)
    assert "reply-to" not in headers
    assert "bcc" not in headers
    for decoded in headers.values():
        assert "\r" not in decoded
        assert "\n" not in decoded
        assert "\u202e" not in decoded


@pytest.mark.parametrize("value", ENCODED_WORDS)
def test_encoded_words_in_the_sender_name_are_refused_at_save(value: str) -> None:
    document = full()
    document["internal_addresses"]["send_from"] = f'"{value}" <portal@example.com>'
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    [error] = caught.value.errors
    assert error.path == "internal_addresses.send_from"
    assert "encoded-word" in error.message


@pytest.mark.parametrize(
    "value",
    [
        "[" * 1000 + "]" * 1000,
        '{"a": ' * 1000 + "1" + "}" * 1000,
        "".join("  " * i + "- \n" for i in range(500)),
        "? [a, b]\n: 1\n",
        "&a [*a]\n",
    ],
    ids=["json-list-1000", "json-mapping-1000", "yaml-500", "yaml-complex-key", "yaml-recursive"],
)
def test_nested_and_complex_documents_are_refused_in_one_line(value: str) -> None:
    with pytest.raises(DispatcherError) as caught:
        load(value, "settings.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert "32 levels" in message or "a key must be plain text" in message


def test_deep_events_are_refused_at_publish() -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    inner: dict[str, Any] = {"email": "a@example.com"}
    for _ in range(200):
        inner = {"email": "a@example.com", "name": inner}
    event["contact"] = inner
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert len(str(caught.value)) < 600


# Passes the trial render at save (the sample user is "anna.schmidt") and
# prints a control character or a lone surrogate for one user only: found when
# sending. A surrogate used to leave the delivery looping, its reason unknown.
TRAP = "{%% if username == 'x' %%}{{ '%s' }}{%% endif %%}Ihr Benutzername: {{ username }}"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("escape", "described"),
    [("\\x07", "U+0007"), ("\\ud800", "U+D800 (a lone surrogate, which is no character)")],
)
def test_a_template_that_prints_what_cannot_be_sent_dies_with_its_reason(
    stack: Any, escape: str, described: str
) -> None:
    code = f"TRAP{uuid.uuid4().hex[:6]}"
    document = full()
    document["forgotten_username"]["body"] = TRAP % escape
    stack.settings.add_group(code, "Trapped customers")
    stack.settings.save_settings(code, document, "test")
    event = sample_event(EventType.USERNAME_FORGOTTEN)
    event.update(event_id=f"trap-{uuid.uuid4().hex}", customer_group=code, username="x")
    publish(event)
    [delivery] = stack.wait_status(event["event_id"], {"dead"})
    assert delivery.attempts == 1
    assert delivery.last_text == (
        f"cannot render: body: prints the invisible or control character {described}; "
        "a text may print visible characters, line breaks and tabs only"
    )


@pytest.mark.integration
def test_an_encoded_word_in_a_contact_name_arrives_as_text(stack: Any) -> None:
    value = ENCODED_WORDS[0]
    address = f"ew-{uuid.uuid4().hex[:8]}@example.com"
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"ew-{uuid.uuid4().hex}",
        customer_group="RETAIL",
        contact={"email": address, "name": value},
    )
    publish(event)
    stack.wait_status(event["event_id"], {"sent"})
    [entry] = stack.sink.messages(address)
    raw = stack.sink.eml(entry)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert mailbox_of(raw, "To") == (value, address)
    assert message["Reply-To"] is None
