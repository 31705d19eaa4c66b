"""Relays by route, with failover inside one attempt and a breaker per relay (CONTRACT §9).

An e-mail's route (its sender domain, its group) names relays in order. The
first that takes the e-mail wins; a relay that refuses the connection, times
out, fails TLS or AUTH, or answers 421 is skipped for the next one at once,
and its breaker counts the failure. A breaker that is open skips its relay
without trying it, until a single probe (one across all workers, in Redis)
finds it healthy again. A 4xx or 5xx reply about the recipient is that
recipient's answer: it does not fail over, and counts as a healthy relay.
An outcome the relay may have accepted (the connection lost after the final
dot) does not fail over either: another relay would send a second copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dispatcher.smtp.breaker import CircuitBreaker
from dispatcher.smtp.relays import Relay, RelaysSource
from dispatcher.smtp.transport import (
    DeliveryFailure,
    Route,
    SmtpReply,
    SmtpTransport,
    TemporaryFailure,
    UncertainOutcome,
)

log = logging.getLogger("dispatcher.relays")

# What one relay's attempt came to, for metrics: (relay, outcome, seconds).
Observer = Callable[[str, str, float], None]


class RelayRouter:
    """Sends over the relays of an e-mail's route; one connection per relay and process."""

    def __init__(
        self,
        source: RelaysSource,
        *,
        default_timeout: float,
        max_messages_per_connection: int,
        breaker: CircuitBreaker | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.source = source
        self.default_timeout = default_timeout
        self.max_messages = max_messages_per_connection
        self.breaker = breaker
        self.observe = observe
        self._transports: dict[str, tuple[Relay, SmtpTransport]] = {}

    def transport(self, relay: Relay) -> SmtpTransport:
        """This process's connection to ``relay``; a new one when the relay's settings changed."""
        known = self._transports.get(relay.name)
        if known is not None and known[0] == relay:
            return known[1]
        if known is not None:
            known[1].close()
        transport = SmtpTransport(
            relay.smtp_config(
                default_timeout=self.default_timeout,
                max_messages_per_connection=self.max_messages,
            )
        )
        self._transports[relay.name] = (relay, transport)
        return transport

    def close(self) -> None:
        for _, transport in self._transports.values():
            transport.close()
        self._transports.clear()

    def deliver(self, data: bytes, sender: str, recipient: str, route: Route) -> SmtpReply:
        """Send over the first relay of ``route`` that takes the e-mail; raise the last failure."""
        relays = self.source.plan().relays_for(route.sender_domain, route.group)
        skipped: list[str] = []
        last: DeliveryFailure | None = None
        for relay in relays:
            permit = self.breaker.permit(relay.name) if self.breaker is not None else None
            if self.breaker is not None and permit is None:
                skipped.append(relay.name)
                continue
            started = time.perf_counter()
            try:
                reply = self.transport(relay).send_bytes(data, sender, recipient)
            except DeliveryFailure as exc:
                exc.relay = relay.name
                self._observe(relay.name, "relay_fault" if exc.relay_fault else "refused", started)
                if permit is not None and self.breaker is not None:
                    if exc.relay_fault:
                        self.breaker.failed(permit)
                    else:
                        self.breaker.succeeded(permit)
                if not exc.relay_fault or isinstance(exc, UncertainOutcome):
                    raise
                log.warning("relay %s failed (%s); trying the next relay", relay.name, exc)
                last = exc
                continue
            self._observe(relay.name, "accepted", started)
            if permit is not None and self.breaker is not None:
                self.breaker.succeeded(permit)
            return SmtpReply(reply.code, reply.text, relay.name)
        names = ", ".join(r.name for r in relays)
        if last is not None:
            raise TemporaryFailure(
                f"every relay of the route failed ({names}); last: {last.text}",
                last.code,
                relay_fault=True,
                relay=last.relay,
            )
        raise TemporaryFailure(
            f"every relay of the route is paused after failures ({', '.join(skipped)}); "
            "the e-mail waits for one to recover",
            relay_fault=True,
        )

    def _observe(self, relay: str, outcome: str, started: float) -> None:
        if self.observe is not None:
            self.observe(relay, outcome, time.perf_counter() - started)
