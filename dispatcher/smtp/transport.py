"""SMTP: the only module that speaks it.

Each worker process keeps one connection and reuses it across messages,
reconnects when the server dropped an idle connection, and starts a fresh one
after a number of messages. Every reply and every fault is classified here,
in one place: temporary (try again later), permanent (dead letter), or
uncertain (the message may have been accepted; see ``UncertainOutcome``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from typing import Any, NoReturn

from dispatcher.domain.statuses import Verdict
from dispatcher.errors import DispatcherError
from dispatcher.settings import Settings

log = logging.getLogger(__name__)

# An SMTP session with nothing to send for this long is ended with QUIT.
IDLE_SECONDS = 5.0


# A bare address as every one here is (validated before it gets here): no
# space, brackets, quotes or comments, one "@".
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def smtp_path(address: str) -> str:
    """The path of MAIL FROM or RCPT TO for ``address`` (RFC 5321 4.1.2): ``<address>``.

    smtplib.quoteaddr parses every address character by character (about
    10 µs each, twice per e-mail); a bare one needs only its brackets.
    """
    if _BARE_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


@dataclass(frozen=True)
class Route:
    """What chooses an e-mail's relays: its sender domain and its group (CONTRACT §9)."""

    sender_domain: str
    group: str


# CRLF line ends; messages arrive built and folded already (render.py).
_WIRE = compat32.clone(linesep="\r\n")


def classify(code: int) -> Verdict:
    """Sort an SMTP reply code into temporary or permanent failure.

    4xx is temporary and 5xx permanent (RFC 5321 §4.2.1), with one exception:
    552 "exceeded storage allocation" is treated as temporary, because RFC
    5321 §4.5.3.1.10 notes that clients should treat it as 452 when given to
    RCPT, and a full mailbox usually empties again. Anything else unexpected
    (1xx-3xx where a final reply was due) is treated as temporary.
    """
    if code == 552:
        return Verdict.TEMPORARY
    if 500 <= code <= 599:
        return Verdict.PERMANENT
    return Verdict.TEMPORARY


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str
    # The relay that gave it (DISPATCHER_RELAYS_FILE's name); None for the single relay.
    relay: str | None = None


class DeliveryFailure(DispatcherError):
    """An attempt failed; ``code`` and ``text`` are the server's reply, if any.

    ``relay_fault`` marks a failure of the relay itself (it refused or timed
    out the connection, failed TLS or AUTH, or answered 421) rather than the
    relay's answer about this recipient: another relay may take the e-mail.
    """

    verdict: Verdict = Verdict.TEMPORARY

    def __init__(
        self,
        text: str,
        code: int | None = None,
        *,
        relay_fault: bool = False,
        relay: str | None = None,
    ) -> None:
        self.code = code
        self.text = text
        self.relay_fault = relay_fault or code == 421
        self.relay = relay
        super().__init__(f"{code} {text}" if code else text)


class TemporaryFailure(DeliveryFailure):
    verdict = Verdict.TEMPORARY


class PermanentFailure(DeliveryFailure):
    verdict = Verdict.PERMANENT


class UncertainOutcome(DeliveryFailure):
    """The connection was lost after the whole message was handed over.

    The server may or may not have accepted it (RFC 1047). Like most MTAs we
    send again rather than risk losing the e-mail; the Message-ID stays the
    same so that the copies can be recognised.
    """

    verdict = Verdict.UNKNOWN


def failure_for(code: int, text: str) -> DeliveryFailure:
    if classify(code) is Verdict.PERMANENT:
        return PermanentFailure(text, code)
    return TemporaryFailure(text, code)


def _decode(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


class _TrackingSMTP(smtplib.SMTP):
    """Remembers whether the final "." of DATA went out before a failure."""

    dot_sent = False

    def send(self, s: Any) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.dot_sent = True


class _TrackingSMTPSSL(smtplib.SMTP_SSL, _TrackingSMTP):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout: float
    max_messages_per_connection: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout,
            max_messages_per_connection=settings.smtp_max_messages_per_connection,
        )

    def __repr__(self) -> str:  # The password must never reach a log line.
        return f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r})"


class SmtpTransport:
    """One reusable SMTP connection per process."""

    def __init__(self, config: SmtpConfig, idle_seconds: float = IDLE_SECONDS) -> None:
        self.config = config
        self.idle_seconds = idle_seconds
        self._conn: _TrackingSMTP | None = None
        self._sent_on_connection = 0
        self._tls_context: ssl.SSLContext | None = None
        # Sending and the idle watcher take turns on the connection.
        self._lock = threading.Lock()
        self._last_used = time.monotonic()
        self._watcher: threading.Thread | None = None

    def _context(self) -> ssl.SSLContext:
        # Loading the system's certificate store costs tens of milliseconds,
        # as much as sending dozens of messages: do it once per process, and
        # only for a connection that uses TLS.
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()  # Verifies certificates and names.
        return self._tls_context

    def close(self) -> None:
        """End the session politely (QUIT) and forget the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _watch_idle(self) -> None:
        # A relay keeps an idle session open for minutes and counts it against
        # our connection limit; a worker that has nothing to send for a few
        # seconds gives it back with QUIT, and opens a new one when needed.
        while True:
            time.sleep(min(1.0, self.idle_seconds))
            if self._conn is None:
                continue
            if time.monotonic() - self._last_used < self.idle_seconds:
                continue
            if self._lock.acquire(blocking=False):
                try:
                    if time.monotonic() - self._last_used >= self.idle_seconds:
                        self.close()
                finally:
                    self._lock.release()

    def _start_watcher(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch_idle, name="smtp-idle", daemon=True)
            self._watcher.start()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _open(self) -> _TrackingSMTP:
        cfg = self.config
        conn: _TrackingSMTP | None = None
        try:
            if cfg.security == "tls":
                conn = _TrackingSMTPSSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=self._context()
                )
            else:
                conn = _TrackingSMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPResponseException:
            # The server answered (AUTH refused, say): end the session properly.
            if conn is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    conn.quit()
                conn.close()
            raise
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._sent_on_connection = 0
        self._start_watcher()
        return conn

    def _connect(self) -> _TrackingSMTP:
        where = f"{self.config.host}:{self.config.port}"
        try:
            return self._open()
        except smtplib.SMTPAuthenticationError as exc:
            # A configuration problem, not a property of the e-mail: keep the
            # e-mail and retry, so that fixing the credentials delivers it.
            raise TemporaryFailure(
                f"SMTP authentication at {where} failed ({exc.smtp_code}); check "
                "DISPATCHER_SMTP_USERNAME and DISPATCHER_SMTP_PASSWORD",
                exc.smtp_code,
                relay_fault=True,
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise TemporaryFailure(
                f"the SMTP server at {where} does not support this: {exc}; check "
                "DISPATCHER_SMTP_SECURITY",
                relay_fault=True,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise TemporaryFailure(
                f"the SMTP server at {where} refused the connection: {_decode(exc.smtp_error)}",
                exc.smtp_code,
                relay_fault=True,
            ) from None
        except ssl.SSLError as exc:
            raise TemporaryFailure(
                f"TLS with {where} failed: {exc.reason or exc}; check DISPATCHER_SMTP_SECURITY "
                "and the server's certificate",
                relay_fault=True,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(
                f"cannot connect to the SMTP server at {where}: {exc}", relay_fault=True
            ) from None

    def send(self, message: Message, sender: str, recipient: str) -> SmtpReply:
        """Send one message to one recipient; raise a ``DeliveryFailure`` subclass."""
        return self.send_bytes(message.as_bytes(policy=_WIRE), sender, recipient)

    def deliver(self, data: bytes, sender: str, recipient: str, route: Route) -> SmtpReply:
        """One relay serves every route (``RelayRouter`` chooses among several)."""
        return self.send_bytes(data, sender, recipient)

    def send_bytes(self, data: bytes, sender: str, recipient: str) -> SmtpReply:
        """Send a message, already in wire form (CRLF), to one recipient."""
        with self._lock:
            self._last_used = time.monotonic()
            return self._send(data, sender, recipient)

    def _send(self, data: bytes, sender: str, recipient: str) -> SmtpReply:
        reused = self._conn is not None
        if (
            self._conn is not None
            and self._sent_on_connection >= self.config.max_messages_per_connection
        ):
            self.close()
            reused = False
        try:
            return self._transaction(data, sender, recipient)
        except _StaleConnection:
            # The server closed a connection we kept open between messages.
            # Nothing of this message went out, so trying once more on a fresh
            # connection is safe.
            if not reused:
                raise TemporaryFailure(
                    "the SMTP server closed the connection", relay_fault=True
                ) from None
            return self._transaction(data, sender, recipient)

    def _transaction(self, data: bytes, sender: str, recipient: str) -> SmtpReply:
        fresh = self._conn is None
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        conn.dot_sent = False
        stage = _Stage()
        try:
            code, reply = self._exchange(conn, data, sender, recipient, fresh, stage)
        except smtplib.SMTPDataError as exc:
            self._reset()
            raise failure_for(exc.smtp_code, f"DATA refused: {_decode(exc.smtp_error)}") from None
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            # smtplib reports a read timeout as a disconnection; tell them apart.
            if isinstance(exc.__context__, TimeoutError):
                return self._timed_out(conn, stage.name)
            if conn.dot_sent:
                raise UncertainOutcome(
                    "the connection was lost after the message was sent, before the reply"
                ) from None
            if not fresh and stage.name == "MAIL FROM":
                raise _StaleConnection from None
            raise TemporaryFailure(
                f"the SMTP server dropped the connection at {stage.name}: {exc}", relay_fault=True
            ) from None
        except TimeoutError:
            self._drop()
            return self._timed_out(conn, stage.name)
        except OSError as exc:
            self._drop()
            if conn.dot_sent:
                raise UncertainOutcome(
                    f"the connection failed after the message was sent: {exc}"
                ) from None
            raise TemporaryFailure(
                f"the SMTP connection failed at {stage.name}: {exc}", relay_fault=True
            ) from None
        if code != 250:
            self._reset()
            raise failure_for(code, f"message refused: {_decode(reply)}")
        self._sent_on_connection += 1
        return SmtpReply(code, _decode(reply))

    def _exchange(
        self,
        conn: _TrackingSMTP,
        data: bytes,
        sender: str,
        recipient: str,
        fresh: bool,
        stage: _Stage,
    ) -> tuple[int, bytes]:
        """MAIL, RCPT and DATA; the server's reply to the message. ``stage`` follows along."""
        pipelined = conn.has_extn("pipelining")
        if pipelined:
            # RFC 2920: MAIL, RCPT and DATA in one write, their replies read
            # in order; the message follows only a 354. Two round trips per
            # message instead of four.
            conn.send(
                f"MAIL FROM:{smtp_path(sender)}\r\n"
                f"RCPT TO:{smtp_path(recipient)}\r\nDATA\r\n".encode("ascii")
            )
            replies = []
            for stage.name in ("MAIL FROM", "RCPT TO", "DATA"):
                replies.append(conn.getreply())
                if replies[-1][0] == 421:  # The server is closing the connection.
                    self._drop()
                    if stage.name == "MAIL FROM" and not fresh:
                        raise _StaleConnection
                    raise failure_for(421, f"{stage.name} refused: {_decode(replies[-1][1])}")
            stage.name = "MAIL FROM"
        else:
            replies = [conn.mail(sender)]
        code, reply = replies[0]
        if code == 421 and not fresh:
            self._drop()
            raise _StaleConnection
        if code != 250:
            self._refused(replies)
            raise failure_for(code, f"MAIL FROM refused: {_decode(reply)}")
        stage.name = "RCPT TO"
        code, reply = replies[1] if pipelined else conn.rcpt(recipient)
        if code not in (250, 251):
            self._refused(replies)
            raise failure_for(code, f"RCPT TO refused: {_decode(reply)}")
        stage.name = "DATA"
        if not pipelined:
            return conn.data(data)
        code, reply = replies[2]
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        return self._message(conn, data)

    @staticmethod
    def _message(conn: _TrackingSMTP, data: bytes) -> tuple[int, bytes]:
        """The message after a 354, as smtplib's ``data`` sends it: dots doubled, "." last."""
        quoted = _LEADING_DOT.sub(b"..", data)
        if not quoted.endswith(b"\r\n"):
            quoted += b"\r\n"
        conn.send(quoted + b".\r\n")
        return conn.getreply()

    def _refused(self, replies: list[tuple[int, bytes]]) -> None:
        """End a refused transaction: RSET, or a new connection when DATA was let in anyway."""
        if len(replies) > 2 and replies[2][0] == 354:
            # Sending "." would hand over an empty message; the connection
            # is dropped instead (a server that refused MAIL or RCPT should
            # not accept DATA, RFC 2920 §3.1).
            self._drop()
            return
        self._reset()

    def _timed_out(self, conn: _TrackingSMTP, stage: str) -> NoReturn:
        if conn.dot_sent:
            raise UncertainOutcome(
                f"no reply within {self.config.timeout:g} s after the message was sent"
            )
        raise TemporaryFailure(
            f"the SMTP server did not answer within {self.config.timeout:g} s at {stage}",
            relay_fault=True,
        )

    def _reset(self) -> None:
        """Clear a failed transaction; drop the connection if even that fails."""
        if self._conn is None:
            return
        try:
            code, _ = self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
            return
        if code != 250:
            self._drop()


# smtplib's own rule for DATA (RFC 5321 §4.5.2): a line that starts with "."
# gets another one.
_LEADING_DOT = re.compile(rb"(?m)^\.")


class _Stage:
    """Where a transaction is, for saying where it failed."""

    name = "MAIL FROM"


class _StaleConnection(Exception):
    """Internal signal: a kept connection turned out to be closed."""

    pass
