"""Checking a relay by hand: connect, EHLO, STARTTLS/TLS with its certificate, AUTH.

For ``dispatcher relays check`` and the web UI's "Verbindung testen". Nothing
is sent; the session ends with QUIT. The result is one line that never holds
a secret.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from dataclasses import dataclass

from dispatcher.smtp.relays import Relay


@dataclass(frozen=True)
class RelayCheck:
    relay: str
    ok: bool
    steps: tuple[str, ...]  # what succeeded, in order
    problem: str | None
    milliseconds: int

    def line(self) -> str:
        done = ", ".join(self.steps) or "nothing"
        if self.ok:
            return f"{self.relay}: ok ({done}) in {self.milliseconds} ms"
        return f"{self.relay}: FAILED after {done}: {self.problem}"


def check_relay(relay: Relay, timeout: float) -> RelayCheck:
    """Open a session to ``relay`` as the workers do, and end it without sending."""
    steps: list[str] = []
    started = time.perf_counter()
    context = ssl.create_default_context()
    conn: smtplib.SMTP | None = None
    try:
        if relay.security == "tls":
            conn = smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=relay.timeout or timeout, context=context
            )
            steps.append("TLS")
        else:
            conn = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout or timeout)
        steps.append(f"connect {relay.host}:{relay.port}")
        code, _ = conn.ehlo()
        if code != 250:
            raise smtplib.SMTPResponseException(code, b"EHLO refused")
        steps.append("EHLO")
        if relay.security == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
            steps.append("STARTTLS")
        if relay.username:
            password = relay.password.get_secret_value() if relay.password else ""
            conn.login(relay.username, password)
            steps.append("AUTH")
        conn.quit()
        conn = None
        return RelayCheck(relay.name, True, tuple(steps), None, _ms(started))
    except (OSError, smtplib.SMTPException) as exc:
        problem = failure_text(exc, relay, relay.timeout or timeout)
    finally:
        if conn is not None:
            conn.close()
    return RelayCheck(relay.name, False, tuple(steps), problem, _ms(started))


def failure_text(exc: OSError | smtplib.SMTPException, relay: Relay, timeout: float) -> str:
    """What went wrong, in words an administrator can act on (the API translates them)."""
    where = f"{relay.host}:{relay.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"AUTH refused ({exc.smtp_code}); check the user and the password variable"
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        text = (
            " ".join(raw.decode("utf-8", "replace").split())[:200] if isinstance(raw, bytes) else ""
        )
        return f"the server answered {exc.smtp_code}" + (f": {text}" if text else "")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"not supported by the server: {exc}; check the relay's security"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or exc
        return f"TLS failed: {reason}; check the certificate and the security"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection unexpectedly"
    if isinstance(exc, ConnectionRefusedError):
        return f"the connection to {where} was refused; check the host and the port"
    if isinstance(exc, TimeoutError):
        return (
            f"no answer from {where} within {timeout:g} seconds; "
            "check the host, the port and the firewall"
        )
    if isinstance(exc, socket.gaierror):
        return f"the host name {relay.host} cannot be resolved; check the host"
    return f"cannot connect to {where}: {type(exc).__name__}: {exc}"


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
