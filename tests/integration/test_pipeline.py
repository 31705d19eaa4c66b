"""The pipeline with real parts: Redis, a Celery worker process, an SMTP sink process.

Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from config_store.repository import SettingsRepository
from dispatcher import publish
from dispatcher.broker.app import app
from dispatcher.broker.publisher import TASK_NAME, publish_many, publish_test_send, schedule
from dispatcher.delivery.orchestrator import Dispatcher
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.settings import Settings
from dispatcher.smtp.transport import SmtpConfig, SmtpTransport
from tests.support.documents import addresses_only, full
from tests.support.harness import wait_for
from tests.support.stack import Stack, raw_push, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(request.param, tmp_path_factory.mktemp(f"stack-{request.param}")) as s:
        yield s


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def group_with(stack: Stack, document: dict[str, Any]) -> str:
    code = unique("G").upper()
    stack.settings.add_group(code, f"Group {code}")
    stack.settings.save_settings(code, document, "test")
    return code


def contact(
    tag: str, locale: str | None = None, name: str | None = "Kim Example"
) -> dict[str, Any]:
    result: dict[str, Any] = {"email": f"{tag}-{uuid.uuid4().hex[:8]}@example.com"}
    if name:
        result["name"] = name
    if locale:
        result["locale"] = locale
    return result


def event(event_type: EventType, group: str, **fields: Any) -> dict[str, Any]:
    data = sample_event(event_type)
    data["event_id"] = unique(event_type.value)
    data["customer_group"] = group
    data.update(fields)
    return data


def parsed(stack: Stack, entry: dict[str, Any]) -> email.message.EmailMessage:
    message = email.message_from_bytes(stack.sink.eml(entry), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def only_message_to(stack: Stack, address: str, timeout: float = 30) -> email.message.EmailMessage:
    entries = wait_for(lambda: stack.sink.messages(address), timeout, f"mail to {address}")
    assert len(entries) == 1, entries
    return parsed(stack, entries[0])


def test_every_event_type_delivers_the_contract_emails(stack: Stack) -> None:
    document = full()
    document["notify_old_main_contact"]["send_email"] = True
    group = group_with(stack, document)
    requester, validated, new, old, forgot, reset = (
        contact("requester", "de-DE"),
        contact("validated", "de"),
        contact("new", "de"),
        contact("old", "de"),
        contact("forgot", "de"),
        contact("reset", "en-GB"),
    )
    events = [
        event(EventType.ACCESS_REQUESTED, group, contact=requester, self_initiated=False),
        event(EventType.CUSTOMER_VALIDATED, group, contact=validated),
        event(EventType.MAIN_CONTACT_CHANGED, group, new_contact=new, old_contact=old),
        event(EventType.USERNAME_FORGOTTEN, group, contact=forgot),
        event(EventType.PASSWORD_RESET, group, contact=reset),
    ]
    for item in events:
        assert publish(item) == item["event_id"]
    expected = {
        requester["email"]: "Zugang zum Kundenportal für Schmidt & Weber GmbH",
        validated["email"]: "Willkommen, Schmidt & Weber GmbH",
        new["email"]: "Neuer Hauptkontakt",
        old["email"]: "Hauptkontakt geändert",
        forgot["email"]: "Ihr Benutzername",
        reset["email"]: "Reset your password",  # English recipient, English translation
    }
    for address, subject in expected.items():
        message = only_message_to(stack, address)
        assert message["Subject"] == subject
        assert message["From"] == "Kundenportal <portal@example.com>"
        assert message["To"] == f"Kim Example <{address}>"
        assert message["Message-ID"]
        assert message["Date"]
        assert message.get_content_type() == "multipart/alternative"
        parts = [part.get_content_type() for part in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
    internal = wait_for(
        lambda: [
            e
            for e in stack.sink.messages("portal-access@example.com")
            if events[0]["customer"]["id"] in parsed(stack, e).get_body(("plain",)).get_content()
            and requester["email"] in parsed(stack, e).get_body(("plain",)).get_content()
        ],
        30,
        "the internal access-request notice",
    )
    assert len(internal) == 1
    assert parsed(stack, internal[0])["Subject"].startswith("Neue Zugriffsanforderung")
    kinds = {d.kind for item in events for d in stack.deliveries(event_id=item["event_id"])}
    assert kinds == {
        "access_request.internal",
        "access_request.customer",
        "validation.new",
        "main_contact.new",
        "main_contact.old",
        "username.forgotten",
        "password.reset",
    }
    for item in events:
        rows = stack.wait_status(item["event_id"], {"sent"})
        assert all(r.last_code == 250 and r.attempts == 1 for r in rows)
        # The envelope sender is the group's address.
    entry = stack.sink.messages(reset["email"])[0]
    assert entry["mail_from"] == "portal@example.com"


def test_checkboxes_off_send_only_what_is_always_sent(stack: Stack) -> None:
    document = full()
    document["customer_access_request"]["send_to_customers_not_self_initiated"] = False
    document["notify_new_main_contact"]["send_email"] = False
    document["notify_old_main_contact"]["send_email"] = False
    group = group_with(stack, document)
    requester, new, old = contact("off-req"), contact("off-new"), contact("off-old")
    access = event(EventType.ACCESS_REQUESTED, group, contact=requester, self_initiated=False)
    change = event(EventType.MAIN_CONTACT_CHANGED, group, new_contact=new, old_contact=old)
    publish(access)
    publish(change)
    rows = stack.wait_status(access["event_id"], {"sent"})
    assert [r.kind for r in rows] == ["access_request.internal"]
    wait_for(lambda: stack.records.get_event(change["event_id"]), 30, "the change event")
    assert stack.deliveries(event_id=change["event_id"]) == []
    assert stack.records.get_event(change["event_id"]).outcome == "accepted"  # type: ignore[union-attr]
    assert stack.sink.messages(requester["email"]) == []
    assert stack.sink.messages(new["email"]) == []
    assert stack.sink.messages(old["email"]) == []


def test_self_initiated_request_skips_the_customer_mail_even_with_the_box_on(stack: Stack) -> None:
    group = group_with(stack, full())
    requester = contact("self")
    access = event(EventType.ACCESS_REQUESTED, group, contact=requester, self_initiated=True)
    publish(access)
    rows = stack.wait_status(access["event_id"], {"sent"})
    assert [r.kind for r in rows] == ["access_request.internal"]
    assert stack.sink.messages(requester["email"]) == []


def test_main_contact_change_with_both_boxes_on(stack: Stack) -> None:
    document = full()
    document["notify_old_main_contact"]["send_email"] = True
    group = group_with(stack, document)
    new, old = contact("both-new"), contact("both-old")
    change = event(EventType.MAIN_CONTACT_CHANGED, group, new_contact=new, old_contact=old)
    publish(change)
    rows = stack.wait_status(change["event_id"], {"sent"}, count=2)
    assert sorted(r.kind for r in rows) == ["main_contact.new", "main_contact.old"]
    assert only_message_to(stack, old["email"])["Subject"] == "Hauptkontakt geändert"


def test_group_with_only_addresses_gets_built_in_texts_in_the_recipients_language(
    stack: Stack,
) -> None:
    group = group_with(stack, addresses_only())
    german, english = contact("builtin-de", "de-AT"), contact("builtin-en", "en")
    publish(event(EventType.PASSWORD_RESET, group, contact=german))
    publish(event(EventType.PASSWORD_RESET, group, contact=english))
    de = only_message_to(stack, german["email"])
    en = only_message_to(stack, english["email"])
    assert de["Subject"] == "Passwort für das Kundenportal zurücksetzen"
    assert en["Subject"] == "Reset your customer portal password"
    assert de["From"] == "portal@example.com"
    assert "Guten Tag Kim Example," in de.get_body(("plain",)).get_content()
    html = en.get_body(("html",)).get_content()
    assert '<a href="https://portal.example.com/reset?token=3f9a1c"' in html
    assert en["Content-Language"] == "en"


def test_the_same_event_published_twice_is_delivered_once(stack: Stack) -> None:
    group = group_with(stack, full())
    person = contact("dup")
    item = event(EventType.PASSWORD_RESET, group, contact=person)
    publish(item)
    stack.wait_status(item["event_id"], {"sent"})
    publish(item)
    publish(item)
    # Wait for the repeats to be processed: they leave no trace but the queue
    # draining, so publish a marker event behind them and wait for that one.
    marker = event(EventType.PASSWORD_RESET, group, contact=contact("marker"))
    publish(marker)
    stack.wait_status(marker["event_id"], {"sent"})
    assert len(stack.sink.messages(person["email"])) == 1
    assert len(stack.deliveries(event_id=item["event_id"])) == 1


def test_temporary_failure_is_retried_and_delivered_once(stack: Stack) -> None:
    group = group_with(stack, full())
    person = contact("tempfail")
    stack.sink.set_faults(
        [{"match": person["email"], "stage": "rcpt", "code": 451, "text": "try later", "times": 2}]
    )
    item = event(EventType.PASSWORD_RESET, group, contact=person)
    publish(item)
    [row] = stack.wait_status(item["event_id"], {"sent"}, timeout=60)
    assert row.attempts == 3
    assert row.last_code == 250
    assert len(stack.sink.messages(person["email"])) == 1


def test_permanent_failure_becomes_a_dead_letter_and_replays(stack: Stack) -> None:
    group = group_with(stack, full())
    person = contact("bounce")
    stack.sink.set_faults(
        [{"match": person["email"], "stage": "rcpt", "code": 550, "text": "5.1.1 no such user"}]
    )
    item = event(EventType.PASSWORD_RESET, group, contact=person)
    publish(item)
    [row] = stack.wait_status(item["event_id"], {"dead"})
    assert (row.attempts, row.last_code) == (1, 550)
    assert row.last_text == "RCPT TO refused: 5.1.1 no such user"
    assert stack.sink.messages(person["email"]) == []
    stack.sink.set_faults([])

    schedule(service_for(stack).replay_dead([row.id]))
    [again] = stack.wait_status(item["event_id"], {"sent"})
    assert again.last_code == 250
    assert len(stack.sink.messages(person["email"])) == 1
    # Replaying the same (now sent) dead letter again sends nothing more.
    assert service_for(stack).replay_dead([row.id]) == []


def service_for(stack: Stack) -> Any:
    config = Settings(database_url=stack.database_url)
    return Dispatcher(
        SettingsRepository(stack.engine),
        DeliveryRecords(stack.engine),
        SmtpTransport(SmtpConfig.from_settings(config)),
        config,
    )


def test_unknown_group_is_recorded_as_failed_and_replayable(stack: Stack) -> None:
    code = unique("LATE").upper()
    person = contact("late")
    item = event(EventType.PASSWORD_RESET, code, contact=person)
    publish(item)
    failed = wait_for(lambda: stack.records.get_event(item["event_id"]), 30, "the failed event")
    assert failed.outcome == "failed"
    assert failed.reason == (
        f"customer group {code!r} is not set up for the portal; add it first with: "
        f'dispatcher groups add {code} --name "..."'
    )
    stack.settings.add_group(code, "Late group")
    stack.settings.save_settings(code, full(), "test")
    payloads = service_for(stack).failed_event_payloads([item["event_id"]])
    assert [p["event_id"] for p in payloads] == [item["event_id"]]
    publish(dict(payloads[0]))
    stack.wait_status(item["event_id"], {"sent"})
    assert stack.records.get_event(item["event_id"]).outcome == "accepted"  # type: ignore[union-attr]


def test_malformed_messages_are_recorded_and_the_worker_keeps_working(stack: Stack) -> None:
    before = len(stack.records.rejected(limit=1000))
    bad_id = unique("bad")
    app.send_task(
        TASK_NAME,
        args=[{"event_id": bad_id, "type": "password.reset"}],
        queue="dispatcher.interactive",
    )
    app.send_task(TASK_NAME, args=["not an object"], queue="dispatcher.bulk")
    app.send_task(TASK_NAME, args=[1, 2], queue="dispatcher.bulk")
    raw_push("dispatcher.bulk", b"this is not JSON at all")
    rejected = wait_for(
        lambda: (r := stack.records.rejected(limit=1000)) and len(r) >= before + 4 and r,
        30,
        "four rejected messages",
    )
    reasons = [r.reason for r in rejected[: len(rejected) - before]]
    assert any(r.startswith("customer_group: is required") for r in reasons), reasons
    assert any("an event must be a JSON object, not str" in r for r in reasons), reasons
    assert any("exactly one positional argument" in r for r in reasons), reasons
    assert any("cannot be decoded" in r or "not a Celery task message" in r for r in reasons), (
        reasons
    )
    assert any(r.event_id == bad_id for r in rejected)
    group = group_with(stack, full())
    item = event(EventType.PASSWORD_RESET, group, contact=contact("after-bad"))
    publish(item)
    stack.wait_status(item["event_id"], {"sent"})
    assert json.loads(json.dumps(reasons))


def test_a_test_send_travels_the_real_path_and_is_marked(stack: Stack) -> None:
    document = full()
    document["notify_old_main_contact"]["send_email"] = False  # ignored by a test send
    group = group_with(stack, document)
    address = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    event_id = publish_test_send(group, "main_contact.old", address, "de", "alice")
    [row] = stack.wait_status(event_id, {"sent"})
    assert (row.test, row.kind, row.recipient) == (True, "main_contact.old", address)
    message = only_message_to(stack, address)
    assert message["Subject"] == "Hauptkontakt geändert"
    with pytest.raises(Exception, match="address: is not a valid e-mail address"):
        publish_test_send(group, "main_contact.old", "nope", None, "alice")


def test_publish_many_travels_in_batches_and_delivers_each_once(stack: Stack) -> None:
    group = group_with(stack, full())
    people = [contact(f"many{n}") for n in range(7)]
    events = [event(EventType.PASSWORD_RESET, group, contact=person) for person in people]
    events.append(dict(events[0]))  # the same event twice in one call
    ids = publish_many(events)
    assert ids == [e["event_id"] for e in events]
    for item in events[:7]:
        stack.wait_status(item["event_id"], {"sent"})
    for person in people:
        assert len(stack.sink.messages(person["email"])) == 1
