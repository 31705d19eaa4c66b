"""Bounces, suppression and the webhook outbox on the record, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3
from pydantic import ValidationError
from sqlalchemy import Engine, insert
from standardwebhooks.webhooks import Webhook

from dispatcher.delivery.feedback import FeedbackRecorder
from dispatcher.delivery.models import WebhookMessage
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.suppressions import NotSuppressed, SuppressionList
from dispatcher.delivery.views import AttemptResult, DeliveryView, NewDelivery
from dispatcher.delivery.webhooks import (
    CONCURRENCY,
    OutboxRow,
    WebhookOutbox,
    WebhookSender,
    outcome_rows,
    retry_delay,
)
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.statuses import DeliveryStatus, WebhookStatus, WebhookType
from dispatcher.errors import CannotResend, UnknownDelivery
from dispatcher.mail.bounces import parse_bounce
from dispatcher.settings import Settings
from tests.support.certificates import self_signed
from tests.support.scripted_receiver import Request, scripted_receiver

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
TARGET = "http://portal.example.test/hooks"
SECRET = "whsec_" + "A" * 44


def delivered(engine: Engine, address: str = "kim@example.com") -> DeliveryView:
    """A password reset the relay took (sent)."""
    records = DeliveryRecords(engine)
    raw = sample_event(EventType.PASSWORD_RESET)
    raw.update(event_id=f"e-{uuid.uuid4().hex[:8]}", customer_group="RETAIL")
    accepted = records.record_accepted(
        raw,
        "interactive",
        [
            NewDelivery(
                kind="password.reset",
                recipient=address,
                recipient_name="Kim",
                recipient_locale="de",
                message_id=f"<{uuid.uuid4().hex}@example.com>",
                lane="interactive",
            )
        ],
        1,
        NOW,
    )
    [claimed] = accepted.claimed
    records.finish(
        [AttemptResult(claimed.delivery.id, DeliveryStatus.SENT, 250, "2.0.0 Ok", sent_at=NOW)],
        NOW,
    )
    view = records.delivery(claimed.delivery.id)
    assert view is not None
    return view


def dsn(recipient: str, status: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} refused\r\n\r\n--b--\r\n"
    ).encode()


def test_a_hard_bounce_marks_suppresses_and_writes_its_webhook_once(engine: Engine) -> None:
    view = delivered(engine)
    recorder = FeedbackRecorder(engine, [TARGET])
    [first] = recorder.record([view.id], parse_bounce(dsn(view.recipient, "5.1.1")), NOW)
    assert (first.result, first.suppressed, first.webhooks) == ("recorded", view.recipient, 1)
    after = DeliveryRecords(engine).delivery(view.id)
    assert after is not None
    assert after.status is DeliveryStatus.BOUNCED
    assert after.bounce_status == "5.1.1"
    entry = SuppressionList(engine).get(view.recipient)
    assert entry is not None
    assert entry.source_delivery_id == view.id
    [again] = recorder.record([view.id], parse_bounce(dsn(view.recipient, "5.1.1")), NOW)
    assert again.result == "already bounced"
    [message] = WebhookOutbox(engine).messages()
    assert message.event_type == WebhookType.BOUNCED
    assert message.payload["data"]["bounce"]["status"] == "5.1.1"
    assert message.payload["data"]["recipient"] == view.recipient


def test_a_policy_refusal_bounces_without_suppressing_the_address(engine: Engine) -> None:
    view = delivered(engine)
    [outcome] = FeedbackRecorder(engine).record(
        [view.id], parse_bounce(dsn(view.recipient, "5.7.1")), NOW
    )
    assert outcome.result == "recorded"
    assert outcome.suppressed is None
    assert SuppressionList(engine).get(view.recipient) is None
    after = DeliveryRecords(engine).delivery(view.id)
    assert after is not None
    assert after.status is DeliveryStatus.BOUNCED


def test_soft_bounces_are_noted_with_a_delayed_webhook_and_nothing_suppressed(
    engine: Engine,
) -> None:
    view = delivered(engine)
    [outcome] = FeedbackRecorder(engine, [TARGET]).record(
        [view.id], parse_bounce(dsn(view.recipient, "4.2.2", "delayed")), NOW
    )
    assert (outcome.result, outcome.suppressed, outcome.webhooks) == ("noted", None, 1)
    after = DeliveryRecords(engine).delivery(view.id)
    assert after is not None
    assert after.status is DeliveryStatus.SENT
    assert (after.feedback or "").startswith("delayed: 4.2.2")
    assert [m.event_type for m in WebhookOutbox(engine).messages()] == [WebhookType.DELAYED]


def test_a_bounce_for_a_delivery_the_record_no_longer_holds_changes_nothing(
    engine: Engine,
) -> None:
    [outcome] = FeedbackRecorder(engine).record([987654], parse_bounce(dsn("x@y.z", "5.1.1")))
    assert outcome.result == "unknown delivery"
    assert SuppressionList(engine).get("x@y.z") is None


def test_the_suppression_list_keeps_the_first_reason_and_finds_by_any_case(
    engine: Engine,
) -> None:
    suppressions = SuppressionList(engine)
    entry, created = suppressions.add("Kim@Example.com", "asked to stop", "alice", NOW)
    assert (entry.address, created) == ("kim@example.com", True)
    again, created = suppressions.add("kim@example.com", "other", "bob", NOW + timedelta(days=1))
    assert (again.reason, again.since, created) == ("asked to stop", NOW, False)
    assert suppressions.reasons(["KIM@example.com", "other@example.com"]) == {
        "kim@example.com": "asked to stop"
    }
    found, total = suppressions.entries("ASKED")
    assert (total, [e.address for e in found]) == (1, ["kim@example.com"])
    suppressions.remove("KIM@EXAMPLE.COM")
    with pytest.raises(NotSuppressed):
        suppressions.remove("kim@example.com")
    with pytest.raises(ValueError, match="not a valid e-mail address"):
        suppressions.add("not an address", "x", "alice", NOW)


def test_a_resend_is_a_new_delivery_linked_to_a_finished_one(engine: Engine) -> None:
    records = DeliveryRecords(engine)
    view = delivered(engine)
    copy = records.resend(view.id, NOW, 2)
    assert (copy.resend_of, copy.status, copy.settings_version) == (view.id, "queued", 2)
    assert (copy.event_id, copy.kind, copy.recipient) == (view.event_id, view.kind, view.recipient)
    assert copy.message_id != view.message_id
    second = records.resend(view.id, NOW, None)
    assert second.message_id not in {view.message_id, copy.message_id}
    with pytest.raises(CannotResend, match="still queued"):
        records.resend(copy.id, NOW, None)
    with pytest.raises(UnknownDelivery):
        records.resend(424242, NOW, None)


def test_outcomes_write_their_webhooks_in_the_same_transaction(engine: Engine) -> None:
    records = DeliveryRecords(engine)
    raw = sample_event(EventType.PASSWORD_RESET)
    raw.update(event_id="e-tx", customer_group="RETAIL")
    planned = NewDelivery("password.reset", "a@example.com", None, None, "<m@x>", "interactive")
    [claimed] = records.record_accepted(raw, "interactive", [planned], 1, NOW).claimed
    rows = outcome_rows(
        [TARGET],
        WebhookType.SENT,
        claimed.delivery,
        "sent",
        NOW,
        code=250,
        text="ok",
        attempts=1,
        relay=None,
    )
    result = AttemptResult(claimed.delivery.id, DeliveryStatus.SENT, 250, "ok", sent_at=NOW)
    records.finish([result], NOW, rows)
    # Finishing the same attempt again (another worker took it over meanwhile
    # and it is not "sending" any more) writes no second webhook.
    records.finish(
        [result],
        NOW + timedelta(seconds=1),
        outcome_rows(
            [TARGET],
            WebhookType.SENT,
            claimed.delivery,
            "sent",
            NOW,
            code=250,
            text="ok",
            attempts=1,
            relay=None,
        ),
    )
    [message] = WebhookOutbox(engine).messages()
    assert message.payload["type"] == "delivery.sent"
    assert message.payload["data"]["delivery_id"] == claimed.delivery.id


def sender_at_now(engine: Engine, url: str = "") -> WebhookSender:
    """A sender whose clock stands at NOW, for ``url`` (none: only rows already queued)."""
    return WebhookSender(
        WebhookOutbox(engine), Settings(webhook_url=url, webhook_secret=SECRET), clock=lambda: NOW
    )


def queue_numbered(engine: Engine, count: int) -> None:
    """``count`` pending webhooks msg_00000, msg_00001, ..., due at NOW."""
    rows = [
        OutboxRow(f"msg_{number:05d}", "http://portal.test/hooks", WebhookType.SENT, number, {})
        for number in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(WebhookMessage), [row.values(NOW) for row in rows])


def queue_webhooks(
    engine: Engine, url: str, views: list[DeliveryView], kinds: tuple[WebhookType, ...]
) -> int:
    """Write each delivery's webhooks of ``kinds`` to the outbox; return how many."""
    rows = [
        row
        for view in views
        for kind in kinds
        for row in outcome_rows(
            [url], kind, view, "sent", NOW, code=250, text="ok", attempts=1, relay=None
        )
    ]
    with engine.begin() as connection:
        connection.execute(insert(WebhookMessage), [r.values(NOW) for r in rows])
    return len(rows)


def test_the_sender_signs_retries_with_backoff_and_gives_up_after_the_period(
    engine: Engine,
) -> None:
    answers = [503, 503, 204]
    seen: list[Request] = []

    def respond(request: Request) -> int:
        seen.append(request)
        return answers.pop(0)

    with scripted_receiver(respond) as receiver:
        queue_webhooks(engine, receiver.url, [delivered(engine)], (WebhookType.SENT,))
        clock = [NOW]
        config = Settings(
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            webhook_retry_base_seconds=10,
            webhook_retry_max_seconds=60,
        )
        sender = WebhookSender(WebhookOutbox(engine), config, clock=lambda: clock[0])
        assert sender.send_due().retried == 1
        assert sender.send_due().retried == 0  # Not due yet.
        clock[0] = NOW + timedelta(seconds=retry_delay(1, 10, 60))
        assert sender.send_due().retried == 1
        clock[0] += timedelta(seconds=retry_delay(2, 10, 60))
        assert sender.send_due().delivered == 1
        sender.close()
    assert len({r.headers["webhook-id"] for r in seen}) == 1
    last = seen[-1]
    stamp = datetime.fromtimestamp(int(last.headers["webhook-timestamp"]), UTC)
    expected = Webhook(SECRET).sign(last.headers["webhook-id"], stamp, last.content.decode())
    assert last.headers["webhook-signature"] == expected
    assert json.loads(last.content)["type"] == "delivery.sent"
    # The receiver's logs name the dispatcher, not the HTTP library.
    assert {r.headers["user-agent"] for r in seen} == {"portal-dispatcher-webhooks"}
    [message] = WebhookOutbox(engine).messages()
    assert (message.status, message.attempts) == (WebhookStatus.DELIVERED, 3)


def test_a_receiver_down_for_longer_than_the_period_is_given_up_and_replayable(
    engine: Engine,
) -> None:
    with scripted_receiver(lambda request: 502) as receiver:
        queue_webhooks(engine, receiver.url, [delivered(engine)], (WebhookType.SENT,))
        clock = [NOW + timedelta(hours=23, minutes=59)]
        config = Settings(
            webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry_base_seconds=600
        )
        sender = WebhookSender(WebhookOutbox(engine), config, clock=lambda: clock[0])
        assert sender.send_due().failed == 1
        sender.close()
    outbox = WebhookOutbox(engine)
    [message] = outbox.messages(WebhookStatus.FAILED)
    assert "HTTP 502" in (message.last_error or "")
    assert outbox.replay(None, NOW) == [message.id]
    assert outbox.counts()["pending"] == 1


def test_webhooks_go_several_at_once_and_each_deliverys_in_order(engine: Engine) -> None:
    lock = threading.Lock()
    # The first two POSTs meet here: sent one at a time, the first would wait
    # alone and the barrier break (the receiver then answers 500).
    together = threading.Barrier(2, timeout=10)
    order: list[tuple[int, str]] = []
    arrivals = [0]

    def respond(request: Request) -> int:
        with lock:
            arrivals[0] += 1
            first_two = arrivals[0] <= 2
        if first_two:
            try:
                together.wait()
            except threading.BrokenBarrierError:
                return 500
        body = json.loads(request.content)
        with lock:
            order.append((body["data"]["delivery_id"], body["type"]))
        return 204

    views = [delivered(engine, f"p{number}@example.com") for number in range(8)]
    with scripted_receiver(respond) as receiver:
        count = queue_webhooks(engine, receiver.url, views, (WebhookType.DELAYED, WebhookType.SENT))
        sender = sender_at_now(engine, receiver.url)
        assert sender.send_due().delivered == count
        sender.close()
    assert not together.broken
    expected = ["delivery.delayed", "delivery.sent"]
    for view in views:
        assert [kind for id_, kind in order if id_ == view.id] == expected
    assert WebhookOutbox(engine).counts()["delivered"] == count


def test_a_receiver_that_is_down_is_asked_at_most_once_per_lane_in_a_round(
    engine: Engine,
) -> None:
    asked: list[str] = []

    def down(request: Request) -> int:
        asked.append(request.headers["webhook-id"])
        return 503

    views = [delivered(engine, f"q{number}@example.com") for number in range(8)]
    with scripted_receiver(down) as receiver:
        count = queue_webhooks(engine, receiver.url, views, (WebhookType.SENT,))
        sender = sender_at_now(engine, receiver.url)
        result = sender.send_due()
        sender.close()
    assert (result.delivered, result.retried, result.failed) == (0, count, 0)
    assert 1 <= len(asked) <= CONCURRENCY
    pending = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
    assert len(pending) == count
    assert all("HTTP 503" in (m.last_error or "") for m in pending)


def test_a_receiver_nobody_listens_on_is_retried_with_the_reason(engine: Engine) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    count = queue_webhooks(engine, url, [delivered(engine)], (WebhookType.SENT,))
    sender = sender_at_now(engine, url)
    assert sender.send_due().retried == count
    [message] = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
    assert "refused" in (message.last_error or "").lower()
    assert message.next_attempt_at is not None
    assert message.next_attempt_at > NOW


def test_webhooks_go_through_the_proxy_the_environment_names(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://webhooks:s%40cret@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "portal.internal")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    sender = WebhookSender(WebhookOutbox(engine), Settings())
    through, target = sender.route("https://portal.example.com/hooks")
    assert isinstance(through, urllib3.ProxyManager)
    assert through.proxy is not None
    assert through.proxy.host == "proxy.internal"
    # user:password from the URL, percent-decoded, as Basic credentials.
    assert through.proxy_headers == {"proxy-authorization": "Basic d2ViaG9va3M6c0BjcmV0"}
    # Through a proxy the request line names the whole URL; direct, the path.
    assert target == "https://portal.example.com/hooks"
    for direct in ("https://portal.internal/hooks", "http://portal.example.com/hooks"):
        pool, target = sender.route(direct)
        assert not isinstance(pool, urllib3.ProxyManager)
        assert target == "/hooks"
    sender.close()


def test_a_webhook_goes_through_an_http_proxy_with_its_credentials(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scripted server plays a forwarding proxy: it sees the whole URL and the credentials."""
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[Request] = []

    def respond(request: Request) -> int:
        seen.append(request)
        return 204

    url = "http://portal.example.test/hooks"
    with scripted_receiver(respond) as proxy:
        address = proxy.url.removesuffix("/hooks").replace("http://", "http://relay:pa%24s@")
        monkeypatch.setenv("HTTP_PROXY", address)
        queue_webhooks(engine, url, [delivered(engine)], (WebhookType.SENT,))
        sender = sender_at_now(engine, url)
        assert sender.send_due().delivered == 1
        sender.close()
    [request] = seen
    assert request.target == url
    assert request.headers["proxy-authorization"] == "Basic cmVsYXk6cGEkcw=="
    assert request.headers["host"] == "portal.example.test"
    assert json.loads(request.content)["type"] == "delivery.sent"


def test_a_proxy_url_urllib3_cannot_use_fails_the_message_with_the_reason(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "ftp://proxy.internal:21")
    url = "http://portal.example.test/hooks"
    queue_webhooks(engine, url, [delivered(engine)], (WebhookType.SENT,))
    sender = sender_at_now(engine, url)
    assert sender.send_due().retried == 1
    sender.close()
    [message] = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
    assert (message.last_error or "").startswith("ProxySchemeUnknown: ")
    assert "ftp" in (message.last_error or "")


def test_an_endpoint_that_does_not_parse_fails_the_message_with_the_reason(
    engine: Engine,
) -> None:
    """A row written under an older DISPATCHER_WEBHOOK_URL, say: one line, not a traceback."""
    broken = "http://[::1/hooks"
    queue_webhooks(engine, broken, [delivered(engine)], (WebhookType.SENT,))
    sender = sender_at_now(engine)
    assert sender.send_due().retried == 1
    sender.close()
    [message] = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
    assert (message.last_error or "").startswith("ValueError: ")


def test_a_receivers_certificate_is_checked(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed payloads name people: they go only to a receiver whose certificate verifies."""
    for name in ("HTTPS_PROXY", "https_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    cert, key = self_signed(tmp_path)
    taken: list[str] = []

    def respond(request: Request) -> int:
        taken.append(request.headers["webhook-id"])
        return 204

    with scripted_receiver(respond, tls=(cert, key)) as receiver:
        queue_webhooks(engine, receiver.url, [delivered(engine)], (WebhookType.SENT,))
        config = Settings(webhook_url=receiver.url, webhook_secret=SECRET)
        untrusting = WebhookSender(WebhookOutbox(engine), config, clock=lambda: NOW)
        assert untrusting.send_due().retried == 1
        untrusting.close()
        [message] = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
        assert "CERTIFICATE_VERIFY_FAILED" in (message.last_error or "")
        assert taken == []
        # The receiver's CA added the way the README says: SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        later = NOW + timedelta(hours=1)
        trusting = WebhookSender(WebhookOutbox(engine), config, clock=lambda: later)
        assert trusting.send_due().delivered == 1
        trusting.close()
    assert taken == [message.webhook_id]


def test_a_claim_takes_at_most_its_limit_however_much_is_due(engine: Engine) -> None:
    """Two thousand pending webhooks, claims of 100: each gets 100 of its own, in order."""
    queue_numbered(engine, 2000)
    outbox = WebhookOutbox(engine)
    first = outbox.claim_due(NOW, timedelta(minutes=5), limit=100)
    second = outbox.claim_due(NOW, timedelta(minutes=5), limit=100)
    assert [m.webhook_id for m in first] == [f"msg_{n:05d}" for n in range(100)]
    assert [m.webhook_id for m in second] == [f"msg_{n:05d}" for n in range(100, 200)]


def test_senders_claiming_at_once_never_take_the_same_webhook(engine: Engine) -> None:
    queue_numbered(engine, 600)
    outbox = WebhookOutbox(engine)
    start = threading.Barrier(6, timeout=10)

    def claim_all() -> list[str]:
        start.wait()
        taken: list[str] = []
        while batch := outbox.claim_due(NOW, timedelta(minutes=5), limit=25):
            taken.extend(m.webhook_id for m in batch)
        return taken

    with ThreadPoolExecutor(6) as senders:
        claims = list(senders.map(lambda _: claim_all(), range(6)))
    everything = [webhook_id for claim in claims for webhook_id in claim]
    assert sorted(everything) == [f"msg_{n:05d}" for n in range(600)]
    # Each sender got a share: the claims interleaved rather than ran one after another.
    assert sum(1 for claim in claims if claim) > 1


def test_a_batch_writes_webhooks_only_for_the_deliveries_still_its_own(engine: Engine) -> None:
    records = DeliveryRecords(engine)
    raw = sample_event(EventType.PASSWORD_RESET)
    raw.update(event_id="e-mixed", customer_group="RETAIL")
    planned = [
        NewDelivery("password.reset", f"{name}@example.com", None, None, f"<{name}@x>", "bulk")
        for name in ("ours", "gone")
    ]
    ours, gone = records.record_accepted(raw, "bulk", planned, 1, NOW).claimed

    def outcome(view: DeliveryView) -> tuple[AttemptResult, list[OutboxRow]]:
        rows = outcome_rows(
            [TARGET],
            WebhookType.SENT,
            view,
            "sent",
            NOW,
            code=250,
            text="ok",
            attempts=1,
            relay=None,
        )
        return AttemptResult(view.id, DeliveryStatus.SENT, 250, "ok", sent_at=NOW), rows

    # "gone" was finished elsewhere first (taken over, say): it is not "sending" any more.
    gone_result, gone_rows = outcome(gone.delivery)
    records.finish([gone_result], NOW, gone_rows)
    ours_result, ours_rows = outcome(ours.delivery)
    again_result, again_rows = outcome(gone.delivery)
    records.finish([ours_result, again_result], NOW + timedelta(seconds=1), ours_rows + again_rows)
    counts: dict[int | None, int] = {}
    for message in WebhookOutbox(engine).messages():
        counts[message.delivery_id] = counts.get(message.delivery_id, 0) + 1
    assert counts == {ours.delivery.id: 1, gone.delivery.id: 1}


@pytest.mark.parametrize(
    "url",
    [
        "htps://portal.example.com/hooks",
        "portal.example.com/hooks",
        "https:///hooks",
        "http://[::1/hooks",
    ],
)
def test_a_webhook_url_must_name_an_http_or_https_receiver(url: str) -> None:
    with pytest.raises(ValidationError, match="is not an http:// or https:// URL") as refused:
        Settings(
            webhook_url=f"https://hook:s3cret@ok.example.com/hooks, {url}", webhook_secret=SECRET
        )
    # The error is printed to logs: it never repeats a password of the setting.
    assert "s3cret" not in str(refused.value)


def test_a_refused_webhook_url_does_not_show_its_password() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(webhook_url="htps://hook:s3cret@portal.example.com/hooks", webhook_secret=SECRET)
    assert "s3cret" not in str(refused.value)
    assert "portal.example.com" in str(refused.value)


def test_a_row_with_a_mistyped_scheme_fails_instead_of_going_out_unencrypted(
    engine: Engine,
) -> None:
    """A row written under an older setting: urllib3's helper would have used plain HTTP."""
    seen: list[Request] = []

    def respond(request: Request) -> int:
        seen.append(request)
        return 204

    with scripted_receiver(respond) as receiver:
        mistyped = receiver.url.replace("http://", "htp://")
        queue_webhooks(engine, mistyped, [delivered(engine)], (WebhookType.SENT,))
        sender = sender_at_now(engine)
        assert sender.send_due().retried == 1
        sender.close()
        assert seen == []
    [message] = WebhookOutbox(engine).messages(WebhookStatus.PENDING)
    assert (message.last_error or "").startswith("URLSchemeUnknown: ")


def test_a_closed_sender_can_send_again(engine: Engine) -> None:
    with scripted_receiver(lambda request: 204) as receiver:
        sender = sender_at_now(engine, receiver.url)
        queue_webhooks(engine, receiver.url, [delivered(engine)], (WebhookType.SENT,))
        assert sender.send_due().delivered == 1
        sender.close()
        queue_webhooks(
            engine, receiver.url, [delivered(engine, "jo@example.com")], (WebhookType.SENT,)
        )
        assert sender.send_due().delivered == 1
        sender.close()
