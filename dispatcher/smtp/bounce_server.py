"""The bounce server: an SMTP server for the bounce domain's MX (CONTRACT §8).

It takes mail only for the signed return paths of this installation's
deliveries and refuses every other recipient at RCPT (550), so it relays
nothing and cannot be used to fill the record with forged bounces. A message
is handed to ``record`` (in a worker thread, off the event loop) and only
acknowledged once it is recorded; while the record cannot be written the
answer is 451, so that the sending MTA keeps the bounce and tries again.

Limits for a server on the open internet: a size limit (552 beyond it), an
idle timeout per connection, a cap on simultaneous connections (421 beyond
it), and a cap on recipients per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("dispatcher.bounces")

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_CONNECTIONS = 200
MAX_RECIPIENTS = 20
IDLE_TIMEOUT_SECONDS = 30.0


class BounceHandler:
    """Accepts signed return paths only; hands each message to ``record``."""

    def __init__(
        self,
        domain: str,
        delivery_of: Callable[[str], int | None],
        record: Callable[[Sequence[int], bytes], object],
    ) -> None:
        self.domain = domain.lower()
        self.delivery_of = delivery_of
        self.record = record

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients; send the rest in another message"
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if domain != self.domain:
            return f"550 5.7.1 relaying denied: this server takes mail for {self.domain} only"
        if self.delivery_of(address) is None:
            return "550 5.1.1 no such return path"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        ids = [i for i in (self.delivery_of(a) for a in envelope.rcpt_tos) if i is not None]
        content = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.record, ids, content)
        except Exception:
            log.exception("a bounce for deliveries %s could not be recorded", ids)
            return "451 4.3.0 the bounce could not be recorded now; try again later"
        return "250 2.0.0 OK: recorded"


class _LimitedSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's SMTP with a cap on simultaneous connections, shared by all of them."""

    def __init__(self, *args: Any, gate: _Gate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate
        self._admitted = False

    def connection_made(self, transport: Any) -> None:
        if not self._gate.enter():
            transport.write(b"421 4.7.0 too many connections; try again later\r\n")
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._admitted:
            self._gate.leave()
            self._admitted = False
            super().connection_lost(error)


class _Gate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def enter(self) -> bool:
        # Called on the server's event loop only: no lock needed.
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


class BounceController(Controller):  # type: ignore[misc]
    """Runs the bounce server in a background thread; ``stop()`` ends it."""

    def __init__(self, handler: BounceHandler, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = _Gate(max_connections)

    def factory(self) -> SMTP:
        return _LimitedSMTP(self.handler, gate=self._gate, **self.SMTP_kwargs)


def start_bounce_server(
    handler: BounceHandler,
    host: str = "127.0.0.1",
    port: int = 2526,
    *,
    max_connections: int = MAX_CONNECTIONS,
    max_bytes: int = MAX_MESSAGE_BYTES,
    timeout: float = IDLE_TIMEOUT_SECONDS,
) -> BounceController:
    controller = BounceController(
        handler,
        max_connections=max_connections,
        hostname=host,
        port=port,
        data_size_limit=max_bytes,
        server_hostname=handler.domain,
        ready_timeout=10,
        timeout=timeout,
    )
    controller.start()
    return controller
