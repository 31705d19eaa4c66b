"""The mail world talks back: return paths, the bounce server, suppression, webhooks, resend.

Real parts: a worker, an SMTP sink, ``dispatcher bounces serve`` and a webhook
receiver that verifies every signature with the ``standardwebhooks`` library,
each in its own process; SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import secrets
import smtplib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from dispatcher import publish
from dispatcher.delivery.suppressions import SuppressionList
from dispatcher.delivery.views import DeliveryView
from dispatcher.domain.kinds import EventType
from dispatcher.domain.return_path import read_return_path
from dispatcher.domain.samples import sample_event
from tests.support.cli import run
from tests.support.documents import full
from tests.support.harness import BounceServer, Receiver, wait_for
from tests.support.stack import Stack, running_stack

DOMAIN = "bounces.example.test"
KEY = secrets.token_urlsafe(32)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, BounceServer, Receiver]]:
    directory = tmp_path_factory.mktemp(f"feedback-{request.param}")
    receiver = Receiver(directory / "receiver", WEBHOOK_SECRET).start()
    env = {
        "DISPATCHER_BOUNCE_DOMAIN": DOMAIN,
        "DISPATCHER_SECRET_KEY": KEY,
        "DISPATCHER_WEBHOOK_URL": receiver.url,
        "DISPATCHER_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DISPATCHER_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        "DISPATCHER_WEBHOOK_RETRY_MAX_SECONDS": "2",
    }
    try:
        with running_stack(request.param, directory, **env) as stack:
            stack.settings.add_group("RETAIL", "Retail customers")
            stack.settings.save_settings("RETAIL", full(), "test")
            bounces = BounceServer(stack.env, directory / "bounces.log").start()
            try:
                yield stack, bounces, receiver
            finally:
                bounces.stop()
    finally:
        receiver.stop()


def reset(address: str) -> dict[str, Any]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"fb-{uuid.uuid4().hex[:10]}",
        customer_group="RETAIL",
        contact={"email": address, "name": "Kim", "locale": "de"},
    )
    return event


def dsn(recipient: str, status: str, action: str, diagnostic: str) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    boundary = f"b-{uuid.uuid4().hex}"
    text = f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bounces@example.test
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mailbox.example.net
Diagnostic-Code: smtp; {diagnostic}

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def bounce_to(server: BounceServer, return_path: str, message: bytes) -> tuple[int, bytes]:
    """Deliver ``message`` to ``return_path`` on the bounce server; the reply to RCPT/DATA."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.net")
        smtp.mail("")
        code, text = smtp.rcpt(return_path)
        if code != 250:
            return code, text
        code, text = smtp.data(message)
        return code, text


def sent_one(stack: Stack, address: str) -> tuple[DeliveryView, str]:
    event = reset(address)
    publish(event)
    [row] = stack.wait_status(event["event_id"], {"sent"})
    [entry] = stack.sink.messages(address)
    return row, entry["mail_from"]


def webhooks_for(receiver: Receiver, delivery_id: int, kind: str) -> list[dict[str, Any]]:
    return [
        m
        for m in receiver.received()
        if m["payload"]["type"] == kind and m["payload"]["data"]["delivery_id"] == delivery_id
    ]


@pytest.mark.redis
def test_a_hard_bounce_marks_the_delivery_suppresses_the_address_and_tells_the_portal(
    world: tuple[Stack, BounceServer, Receiver],
) -> None:
    stack, bounces, receiver = world
    address = f"gone-{uuid.uuid4().hex[:6]}@example.com"
    row, return_path = sent_one(stack, address)
    # The envelope sender names this delivery, signed: the From header stays the group's.
    assert return_path.endswith(f"@{DOMAIN}")
    assert read_return_path(return_path, KEY, DOMAIN) == row.id
    sent = wait_for(lambda: webhooks_for(receiver, row.id, "delivery.sent"), 30, "sent webhook")
    assert sent[0]["payload"]["data"]["status"] == "sent"
    assert sent[0]["payload"]["data"]["smtp_code"] == 250

    message = dsn(address, "5.1.1", "failed", "550 5.1.1 <x>: Recipient address rejected")
    assert bounce_to(bounces, return_path, message)[0] == 250
    [bounced] = stack.wait_status(row.event_id, {"bounced"})
    assert bounced.bounce_status == "5.1.1"
    assert "Recipient address rejected" in (bounced.bounce_text or "")
    entry = SuppressionList(stack.engine).get(address)
    assert entry is not None
    assert entry.source_delivery_id == row.id
    assert "5.1.1" in entry.reason
    hooks = wait_for(
        lambda: webhooks_for(receiver, row.id, "delivery.bounced"), 30, "bounced webhook"
    )
    assert hooks[0]["payload"]["data"]["bounce"]["status"] == "5.1.1"

    # The same bounce again changes nothing: one webhook, one suppression.
    assert bounce_to(bounces, return_path, message)[0] == 250
    again = stack.deliveries(event_id=row.event_id)
    assert [r.status for r in again] == ["bounced"]
    assert SuppressionList(stack.engine).entries(address)[1] == 1

    # The next e-mail to that address is not sent, and the portal hears of it.
    later = reset(address)
    publish(later)
    [held] = stack.wait_status(later["event_id"], {"suppressed"})
    assert "suppression list" in (held.last_text or "")
    assert len(stack.sink.messages(address)) == 1
    wait_for(lambda: webhooks_for(receiver, held.id, "delivery.suppressed"), 30, "webhook")
    ids = [m["webhook_id"] for m in receiver.received()]
    assert len(ids) == len(set(ids)), "a webhook-id arrived twice"


@pytest.mark.redis
def test_soft_bounces_and_auto_replies_are_noted_and_nothing_is_suppressed(
    world: tuple[Stack, BounceServer, Receiver],
) -> None:
    stack, bounces, receiver = world
    address = f"full-{uuid.uuid4().hex[:6]}@example.com"
    row, return_path = sent_one(stack, address)
    delayed = dsn(address, "4.2.2", "delayed", "452 4.2.2 Mailbox full")
    assert bounce_to(bounces, return_path, delayed)[0] == 250

    def noted() -> DeliveryView | None:
        [view] = stack.deliveries(event_id=row.event_id)
        return view if view.feedback else None

    view = wait_for(noted, 30, "the soft bounce to be noted")
    assert view.status == "sent"
    assert view.feedback is not None
    assert view.feedback.startswith("delayed")
    assert SuppressionList(stack.engine).get(address) is None
    wait_for(lambda: webhooks_for(receiver, row.id, "delivery.delayed"), 30, "delayed webhook")

    reply = EmailMessage()
    reply["From"] = address
    reply["To"] = return_path
    reply["Subject"] = "Automatische Antwort: Ihr Passwort"
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_content("Ich bin bis Montag nicht im Büro.")
    assert bounce_to(bounces, return_path, reply.as_bytes())[0] == 250
    wait_for(
        lambda: (
            (v := stack.deliveries(event_id=row.event_id)[0]).feedback
            and v.feedback.startswith("auto-reply")
        ),
        30,
        "the auto-reply to be noted",
    )
    assert stack.deliveries(event_id=row.event_id)[0].status == "sent"
    assert SuppressionList(stack.engine).get(address) is None


@pytest.mark.redis
def test_forged_and_foreign_return_paths_are_refused_at_rcpt(
    world: tuple[Stack, BounceServer, Receiver],
) -> None:
    stack, bounces, _ = world
    address = f"victim-{uuid.uuid4().hex[:6]}@example.com"
    row, return_path = sent_one(stack, address)
    local, _, domain = return_path.partition("@")
    altered = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    message = dsn(address, "5.1.1", "failed", "550 no such user")
    for target in (
        altered,
        f"bounces+{row.id}@{DOMAIN}",
        "postmaster@" + DOMAIN,
        local + "@other.example",
    ):
        code, _ = bounce_to(bounces, target, message)
        assert code == 550, target
    assert stack.deliveries(event_id=row.event_id)[0].status == "sent"
    assert SuppressionList(stack.engine).get(address) is None


@pytest.mark.redis
def test_resend_is_refused_for_a_suppressed_address_unless_forced(
    world: tuple[Stack, BounceServer, Receiver],
) -> None:
    stack, bounces, _ = world
    address = f"back-{uuid.uuid4().hex[:6]}@example.com"
    row, return_path = sent_one(stack, address)
    bounce_to(bounces, return_path, dsn(address, "5.1.1", "failed", "550 user unknown"))
    stack.wait_status(row.event_id, {"bounced"})
    env = {**stack.env}
    refused = run("deliveries", "resend", str(row.id), cwd=stack.directory, env=env)
    assert refused.code == 1
    assert "suppression list" in refused.err
    forced = run("deliveries", "resend", str(row.id), "--force", cwd=stack.directory, env=env)
    assert forced.code == 0, forced.err

    def resent() -> list[DeliveryView]:
        rows = [r for r in stack.deliveries(event_id=row.event_id) if r.resend_of == row.id]
        return rows if rows and rows[0].status == "sent" else []

    [copy] = wait_for(resent, 30, "the resend to be sent")
    assert copy.message_id != row.message_id
    assert len(stack.sink.messages(address)) == 2
    audit = run("audit", "--json", cwd=stack.directory, env=env)
    assert '"delivery.resend"' in audit.out


@pytest.mark.redis
def test_garbage_huge_messages_and_a_flood_never_stop_the_bounce_server(
    world: tuple[Stack, BounceServer, Receiver],
) -> None:
    """Refused or recorded, never a crash, and nothing suppressed that should not be."""
    stack, bounces, _ = world
    address = f"flood-{uuid.uuid4().hex[:6]}@example.com"
    row, return_path = sent_one(stack, address)
    # Garbage is recorded as an unreadable reply; nothing changes for the delivery.
    assert bounce_to(bounces, return_path, b"\x00\xff garbage \r\n" * 100)[0] == 250
    # Up to 10 MiB is taken, beyond it refused at DATA.
    big = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n"
    assert bounce_to(bounces, return_path, big * 10_000)[0] == 250
    assert bounce_to(bounces, return_path, big * 10_600)[0] == 552
    # A flood from 16 connections at once, as fast as they go.
    reply = b"Subject: Automatische Antwort\r\nAuto-Submitted: auto-replied\r\n\r\nweg\r\n"
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    started = time.monotonic()

    def flood() -> None:
        with smtplib.SMTP("127.0.0.1", bounces.port, timeout=30) as smtp:
            smtp.ehlo("mx.example.net")
            for _ in range(100):
                smtp.mail("")
                code, _ = smtp.rcpt(return_path)
                if code == 250:
                    code, _ = smtp.data(reply)
                else:
                    smtp.rset()
                with lock:
                    codes[code] += 1

    threads = [threading.Thread(target=flood) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    rate = sum(codes.values()) / (time.monotonic() - started)
    assert set(codes) <= {250, 451, 421}, codes
    assert codes[250] >= 1000, codes
    assert bounces.process is not None
    assert bounces.process.poll() is None
    [view] = stack.deliveries(event_id=row.event_id)
    assert view.status == "sent"
    assert SuppressionList(stack.engine).get(address) is None
    print(f"bounce flood: {sum(codes.values())} messages at {rate:.0f}/s, {dict(codes)}")
