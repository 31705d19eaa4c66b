"""SMTP transport against an aiosmtpd sink in its own process, faults injected."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from dispatcher.domain.addresses import Mailbox
from dispatcher.mail.render import RenderedEmail, build_message
from dispatcher.smtp.transport import (
    PermanentFailure,
    SmtpConfig,
    SmtpTransport,
    TemporaryFailure,
    UncertainOutcome,
    classify,
)
from tests.support.harness import Sink, free_port


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (421, "temporary"),
        (450, "temporary"),
        (451, "temporary"),
        (452, "temporary"),
        (500, "permanent"),
        (550, "permanent"),
        (551, "permanent"),
        (553, "permanent"),
        (554, "permanent"),
        (552, "temporary"),
        (354, "temporary"),
        (200, "temporary"),
    ],
)
def test_reply_codes_are_classified_in_one_place(code: int, verdict: str) -> None:
    assert classify(code) == verdict


@pytest.fixture(autouse=True)
def close_transports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every transport a test opened, so no socket outlives its test."""
    opened: list[SmtpTransport] = []
    original = SmtpTransport.__init__

    def tracking(self: SmtpTransport, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(SmtpTransport, "__init__", tracking)
    yield
    for transport in opened:
        transport.close()


@pytest.fixture(scope="module", params=["pipelining", "classic"])
def sink(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sink]:
    """Every test here runs against a sink that offers PIPELINING and one that does not."""
    started = Sink(
        tmp_path_factory.mktemp("sink"), pipelining=request.param == "pipelining"
    ).start()
    yield started
    started.stop()


def config(port: int, **changes: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": None,
        "password": None,
        "timeout": 2.0,
        "max_messages_per_connection": 100,
    }
    values.update(changes)
    return SmtpConfig(**values)  # type: ignore[arg-type]


def message(to: str) -> object:
    email = RenderedEmail("Betreff", "Text\n", "<p>Text</p>", "de")
    return build_message(
        email,
        Mailbox("portal@example.com", "Portal"),
        Mailbox(to),
        "<id@example.com>",
        datetime(2026, 11, 27, tzinfo=UTC),
    )


def send(transport: SmtpTransport, to: str) -> object:
    return transport.send(message(to), "portal@example.com", to)  # type: ignore[arg-type]


def test_one_connection_carries_many_messages(sink: Sink) -> None:
    sink.set_faults([])
    transport = SmtpTransport(config(sink.port))
    for number in range(5):
        reply = send(transport, f"reuse{number}@example.com")
        assert reply.code == 250  # type: ignore[attr-defined]
    assert transport._sent_on_connection == 5
    assert transport._tls_context is None  # No certificate store without TLS.
    transport.close()


def test_commands_go_together_when_the_server_offers_pipelining(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.set_faults([])
    transport = SmtpTransport(config(sink.port))
    send(transport, "warm@example.com")
    conn = transport._conn
    assert conn is not None
    writes: list[bytes] = []
    original = conn.send

    def recorded(data: object) -> None:
        writes.append(data if isinstance(data, bytes) else str(data).encode())
        original(data)  # type: ignore[arg-type]

    monkeypatch.setattr(conn, "send", recorded)
    assert send(transport, "piped@example.com").code == 250  # type: ignore[attr-defined]
    assert sink.messages("piped@example.com")
    commands = [w.split(b" ", 1)[0].split(b":", 1)[0].upper() for w in writes]
    if sink.pipelining:
        # RFC 2920: MAIL, RCPT and DATA in one write, then the message.
        assert len(writes) == 2, writes
        assert writes[0] == (
            b"MAIL FROM:<portal@example.com>\r\nRCPT TO:<piped@example.com>\r\nDATA\r\n"
        )
        assert writes[1].endswith(b"\r\n.\r\n")
    else:
        assert commands[:3] == [b"MAIL", b"RCPT", b"DATA\r\n"], writes
    transport.close()


def test_a_message_with_leading_dots_arrives_as_written(sink: Sink) -> None:
    sink.set_faults([])
    transport = SmtpTransport(config(sink.port))
    data = (
        b"From: portal@example.com\r\nTo: dots@example.com\r\nSubject: dots\r\n\r\n"
        b".one\r\n..two\r\n.\r\nlast line without end"
    )
    assert transport.send_bytes(data, "portal@example.com", "dots@example.com").code == 250
    entry = sink.messages("dots@example.com")[-1]
    body = sink.eml(entry).split(b"\r\n\r\n", 1)[1]
    assert body.replace(b"\r\n", b"\n") == b".one\n..two\n.\nlast line without end\n"
    transport.close()


def test_connection_is_renewed_after_the_cap(sink: Sink) -> None:
    sink.set_faults([])
    transport = SmtpTransport(config(sink.port, max_messages_per_connection=2))
    for number in range(5):
        send(transport, f"cap{number}@example.com")
    assert transport._sent_on_connection == 1  # 2 + 2 + 1
    transport.close()


@pytest.mark.parametrize(
    ("stage", "code", "error", "text"),
    [
        ("rcpt", 451, TemporaryFailure, "RCPT TO refused: 4.7.1 try again later"),
        ("rcpt", 550, PermanentFailure, "RCPT TO refused: 5.1.1 no such user"),
        ("rcpt", 552, TemporaryFailure, "RCPT TO refused: 5.2.2 mailbox full"),
        ("data", 554, PermanentFailure, "message refused: 5.7.1 rejected as spam"),
        ("data", 452, TemporaryFailure, "message refused: 4.3.1 insufficient storage"),
    ],
)
def test_replies_become_failures_with_code_and_text(
    sink: Sink, stage: str, code: int, error: type[Exception], text: str
) -> None:
    to = f"{stage}{code}@example.com"
    sink.set_faults([{"match": to, "stage": stage, "code": code, "text": text.split(": ", 1)[1]}])
    transport = SmtpTransport(config(sink.port))
    with pytest.raises(error) as caught:
        send(transport, to)
    assert (caught.value.code, caught.value.text) == (code, text)  # type: ignore[attr-defined]
    # The connection stays usable for the next message.
    sink.set_faults([])
    assert send(transport, "next@example.com").code == 250  # type: ignore[attr-defined]
    transport.close()


def test_connection_lost_after_the_final_dot_is_uncertain(sink: Sink) -> None:
    to = "dropafterdot@example.com"
    sink.set_faults([{"match": to, "stage": "after_data", "action": "drop", "times": 1}])
    transport = SmtpTransport(config(sink.port))
    with pytest.raises(UncertainOutcome):
        send(transport, to)
    # The sink did store it: the documented reason to mark it uncertain.
    assert len(sink.messages(to)) == 1
    sink.set_faults([])
    assert send(transport, "afterdrop@example.com").code == 250  # type: ignore[attr-defined]


def test_no_answer_after_the_final_dot_is_uncertain(sink: Sink) -> None:
    to = "hangdata@example.com"
    sink.set_faults([{"match": to, "stage": "data", "action": "hang", "seconds": 5, "times": 1}])
    transport = SmtpTransport(config(sink.port, timeout=1.0))
    with pytest.raises(UncertainOutcome, match="no reply within 1 s"):
        send(transport, to)


def test_no_answer_before_data_is_temporary(sink: Sink) -> None:
    to = "hangrcpt@example.com"
    sink.set_faults([{"match": to, "stage": "rcpt", "action": "hang", "seconds": 5, "times": 1}])
    transport = SmtpTransport(config(sink.port, timeout=1.0))
    with pytest.raises(TemporaryFailure, match="did not answer within 1 s at RCPT TO"):
        send(transport, to)


def test_refused_connection_is_temporary() -> None:
    transport = SmtpTransport(config(free_port()))
    with pytest.raises(TemporaryFailure, match=r"cannot connect to the SMTP server at 127\.0"):
        send(transport, "nobody@example.com")


def test_tls_against_a_plain_server_fails_clearly(sink: Sink) -> None:
    transport = SmtpTransport(config(sink.port, security="tls"))
    with pytest.raises(TemporaryFailure, match="DISPATCHER_SMTP_SECURITY"):
        send(transport, "tls@example.com")


def test_starttls_requires_server_support(sink: Sink) -> None:
    transport = SmtpTransport(config(sink.port, security="starttls"))
    with pytest.raises(TemporaryFailure, match="does not support"):
        send(transport, "starttls@example.com")


def test_a_dropped_idle_connection_is_renewed_transparently(tmp_path: Path) -> None:
    """A server that closes idle connections: the next send reconnects, once."""
    own = Sink(tmp_path / "idle").start()
    try:
        transport = SmtpTransport(config(own.port))
        assert send(transport, "first@example.com").code == 250  # type: ignore[attr-defined]
        own.stop()
        own.process = None
        restarted = Sink(tmp_path / "idle", port=own.port).start()
        try:
            assert send(transport, "second@example.com").code == 250  # type: ignore[attr-defined]
        finally:
            restarted.stop()
    finally:
        own.stop()


def test_a_server_that_drops_mid_data_gives_a_temporary_failure() -> None:
    """A raw server that hangs up while the message is still being sent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b"220 ready\r\n")
        buffer = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buffer += data
            if buffer.endswith(b"\r\n") and b"DATA\r\n" not in buffer:
                line = buffer.strip().split(b"\r\n")[-1].upper()
                reply = (
                    b"250-ok\r\n250 SIZE 1000000\r\n" if line.startswith(b"EHLO") else b"250 ok\r\n"
                )
                conn.sendall(reply)
            elif buffer.endswith(b"DATA\r\n"):
                conn.sendall(b"354 go ahead\r\n")
                conn.recv(10)  # a few bytes of the message, then hang up
                break
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = SmtpTransport(config(port))
    msg = EmailMessage()
    msg["From"] = "portal@example.com"
    msg["To"] = "middata@example.com"
    msg.set_content("x" * 200_000)
    with pytest.raises((TemporaryFailure, UncertainOutcome)) as caught:
        transport.send(msg, "portal@example.com", "middata@example.com")  # type: ignore[arg-type]
    assert isinstance(caught.value, TemporaryFailure)
    thread.join(5)
    server.close()
