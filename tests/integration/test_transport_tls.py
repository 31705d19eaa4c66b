"""TLS: certificates are verified, implicit TLS and STARTTLS both work."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from dispatcher.smtp.transport import SmtpTransport, TemporaryFailure
from tests.integration.test_transport import config, send
from tests.support.certificates import self_signed
from tests.support.harness import free_port


@dataclass
class TlsServer:
    port: int
    certificate: Path
    received: list[str]


class _Handler:
    def __init__(self, received: list[str]) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _serve(certificate: tuple[Path, Path], *, implicit: bool) -> Iterator[TlsServer]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list[str] = []
    port = free_port()
    options: dict[str, Any] = (
        {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(
        _Handler(received), hostname="127.0.0.1", port=port, server_hostname="localhost", **options
    )
    controller.start()
    try:
        yield TlsServer(port, cert, received)
    finally:
        controller.stop()


@pytest.fixture
def implicit_tls(certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    yield from _serve(certificate, implicit=True)


@pytest.fixture
def starttls(certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    yield from _serve(certificate, implicit=False)


def test_an_untrusted_certificate_is_refused(implicit_tls: TlsServer) -> None:
    transport = SmtpTransport(config(implicit_tls.port, host="localhost", security="tls"))
    with pytest.raises(
        TemporaryFailure, match=r"TLS with localhost:\d+ failed: CERTIFICATE_VERIFY_FAILED"
    ):
        send(transport, "tls@example.com")
    assert implicit_tls.received == []


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_a_trusted_certificate_carries_mail_and_is_loaded_once(
    mode: str,
    implicit_tls: TlsServer,
    starttls: TlsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = implicit_tls if mode == "tls" else starttls
    # OpenSSL reads SSL_CERT_FILE whenever a context loads the default store.
    monkeypatch.setenv("SSL_CERT_FILE", str(server.certificate))
    made: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    transport = SmtpTransport(
        config(server.port, host="localhost", security=mode, max_messages_per_connection=1)
    )
    for number in range(3):
        assert send(transport, f"{mode}{number}@example.com").code == 250  # type: ignore[attr-defined]
    transport.close()
    assert server.received == [f"{mode}{n}@example.com" for n in range(3)]
    # Three connections (one message each), one certificate store.
    assert transport._tls_context is not None
    assert transport._context() is transport._tls_context
    assert made == [transport._tls_context]


def test_the_host_name_must_match_the_certificate(
    implicit_tls: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(implicit_tls.certificate))
    transport = SmtpTransport(config(implicit_tls.port, host="127.0.0.1", security="tls"))
    with pytest.raises(
        TemporaryFailure, match=r"TLS with 127\.0\.0\.1:\d+ failed: CERTIFICATE_VERIFY_FAILED"
    ):
        send(transport, "mismatch@example.com")
    assert implicit_tls.received == []
