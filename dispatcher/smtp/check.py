"""Checking a relay by hand: connect, EHLO, STARTTLS/TLS with its certificate, AUTH.

For ``dispatcher relays check`` and the web UI's "Verbindung testen". Nothing
is sent; the session ends with QUIT. The result is one line that never holds
a secret.
"""

from __future__ import annotations

import smtplib
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
    except smtplib.SMTPAuthenticationError as exc:
        problem = f"AUTH refused ({exc.smtp_code}); check the user and the password variable"
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        problem = f"the server answered {exc.smtp_code} {' '.join(text.split())[:200]}"
    except smtplib.SMTPNotSupportedError as exc:
        problem = f"not supported by the server: {exc}; check the relay's security"
    except ssl.SSLError as exc:
        problem = f"TLS failed: {exc.reason or exc}; check the certificate and the security"
    except (OSError, smtplib.SMTPException) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        if conn is not None:
            conn.close()
    return RelayCheck(relay.name, False, tuple(steps), problem, _ms(started))


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
