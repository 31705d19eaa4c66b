"""What the browser tests find on the record: deliveries with bounces, feedback,
relays and webhooks, a suppression list, relays to check and a DKIM key.

Written straight to the record (as the workers and the bounce server would)
before ``dispatcher api`` starts, so that the pages have something to show
without running workers.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config_store.database import make_engine
from dispatcher.delivery.feedback import FeedbackRecorder
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.suppressions import SuppressionList
from dispatcher.delivery.views import AttemptResult, NewDelivery
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.statuses import DeliveryStatus
from dispatcher.mail.bounces import parse_bounce
from tests.support.harness import free_port

NOW = datetime.now(UTC).replace(microsecond=0)
WEBHOOK_TARGET = "http://portal.example.test/hooks/dispatcher"
# RETAIL's access-request inbox (tests.support.documents.FULL): suppressing it
# is what the suppression list must flag.
INTERNAL_INBOX = "portal-access@example.com"
BOUNCED_ADDRESS = "kim.bounce@example.com"
DELAYED_ADDRESS = "lena.delayed@example.com"
SENT_ADDRESS = "max.sent@example.com"


@dataclass(frozen=True)
class Seeded:
    bounced: int  # a hard bounce: bounced, address suppressed, webhook pending
    delayed: int  # sent through "primary", then a soft bounce noted
    sent: int  # sent, nothing else


def _dsn(recipient: str, status: str, action: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} mailbox unknown\r\n\r\n--b--\r\n"
    ).encode()


def _sent(records: DeliveryRecords, address: str, relay: str | None, at: datetime) -> int:
    raw = sample_event(EventType.PASSWORD_RESET)
    raw.update(
        event_id=f"ui-{uuid.uuid4().hex[:10]}",
        customer_group="RETAIL",
        contact={"email": address, "name": "Kim Test", "locale": "de"},
    )
    accepted = records.record_accepted(
        raw,
        "interactive",
        [
            NewDelivery(
                kind="password.reset",
                recipient=address,
                recipient_name="Kim Test",
                recipient_locale="de",
                message_id=f"<{uuid.uuid4().hex}@example.com>",
                lane="interactive",
            )
        ],
        1,
        at,
    )
    [claimed] = accepted.claimed
    records.finish(
        [
            AttemptResult(
                claimed.delivery.id,
                DeliveryStatus.SENT,
                250,
                "2.0.0 Ok: queued",
                sent_at=at,
                relay=relay,
            )
        ],
        at,
    )
    return claimed.delivery.id


def seed_record(database_url: str) -> Seeded:
    """Deliveries with a hard and a soft bounce, one plain one, and the suppression list."""
    engine = make_engine(database_url)
    try:
        records = DeliveryRecords(engine)
        sent = _sent(records, SENT_ADDRESS, "primary", NOW - timedelta(minutes=30))
        delayed = _sent(records, DELAYED_ADDRESS, "primary", NOW - timedelta(minutes=20))
        bounced = _sent(records, BOUNCED_ADDRESS, "backup", NOW - timedelta(minutes=10))
        feedback = FeedbackRecorder(engine, [WEBHOOK_TARGET])
        feedback.record([bounced], parse_bounce(_dsn(BOUNCED_ADDRESS, "5.1.1", "failed")), NOW)
        feedback.record([delayed], parse_bounce(_dsn(DELAYED_ADDRESS, "4.2.2", "delayed")), NOW)
        SuppressionList(engine).add(
            INTERNAL_INBOX, "mailbox full for weeks", "admin-token", NOW - timedelta(days=1)
        )
    finally:
        engine.dispose()
    return Seeded(bounced=bounced, delayed=delayed, sent=sent)


def relays_file(directory: Path, working_port: int) -> Path:
    """Two relays: "primary" answers (an SMTP sink), "backup" has nobody listening."""
    path = directory / "relays.yaml"
    path.write_text(
        f"""relays:
  primary: {{host: 127.0.0.1, port: {working_port}, security: none}}
  backup:  {{host: 127.0.0.1, port: {free_port()}, security: none}}
routes:
  - match: {{group: RETAIL}}
    relays: [primary, backup]
default: [primary]
""",
        "utf-8",
    )
    return path


def dkim_keys(directory: Path, domain: str = "example.com", selector: str = "ui2026") -> Path:
    """An Ed25519 key for ``domain``, as DISPATCHER_DKIM_KEYS_DIR holds it."""
    keys = directory / "dkim"
    (keys / domain).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            str(keys / domain / f"{selector}.key"),
        ],
        check=True,
        capture_output=True,
    )
    return keys
