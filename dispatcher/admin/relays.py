"""The relays an installation sends through, as administrators see and check them.

Nothing here shows a secret: a relay's password is named by the environment
variable it comes from in the relays file, never printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.delivery.sending import breaker_store, dkim_keys, relay_source
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.errors import DispatcherError
from dispatcher.settings import Settings
from dispatcher.smtp.breaker import BreakerState
from dispatcher.smtp.check import RelayCheck, check_relay
from dispatcher.smtp.relays import RelayPlan

BREAKER_NAMES = {
    BreakerState.CLOSED: "closed",
    BreakerState.HALF_OPEN: "half-open",
    BreakerState.OPEN: "open",
}


@dataclass(frozen=True)
class RelayInfo:
    name: str
    host: str
    port: int
    security: str
    authenticates: bool
    breaker: str  # closed (in use), open (skipped after failures), half-open (being probed)


@dataclass(frozen=True)
class RouteInfo:
    match: str  # "sender domain example.com" or "group RETAIL"
    relays: tuple[str, ...]
    # What the route matches, as data: one of the two is set.
    sender_domain: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class RelaysOverview:
    from_file: bool
    relays: tuple[RelayInfo, ...]
    routes: tuple[RouteInfo, ...]
    default: tuple[str, ...]


@dataclass(frozen=True)
class GroupPath:
    """Which relays a group's e-mails take, in failover order, and whether they are signed."""

    sender_domain: str
    relays: tuple[str, ...]
    dkim_selector: str | None


class UnknownRelay(DispatcherError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"there is no relay named {name!r}; the relays are: {', '.join(known)}")


class Relays:
    """The relays of this installation, read from the same file the workers read."""

    def __init__(self, config: Settings) -> None:
        self.config = config
        self.source = relay_source(config)
        self.breakers = breaker_store(config)
        self.keys = dkim_keys(config)

    def plan(self) -> RelayPlan:
        return self.source.plan()

    def overview(self, now: float) -> RelaysOverview:
        plan = self.plan()
        infos = tuple(
            RelayInfo(
                relay.name,
                relay.host,
                relay.port,
                relay.security,
                relay.username is not None,
                BREAKER_NAMES[self.breakers.state(relay.name, now)],
            )
            for relay in plan.relays
        )
        routes = tuple(
            RouteInfo(
                f"sender domain {route.sender_domain}"
                if route.sender_domain
                else f"group {route.group}",
                tuple(r.name for r in route.relays),
                route.sender_domain or None,
                None if route.sender_domain else route.group,
            )
            for route in plan.routes
        )
        return RelaysOverview(
            self.config.relays_file is not None,
            infos,
            routes,
            tuple(r.name for r in plan.default),
        )

    def check(self, name: str | None = None) -> list[RelayCheck]:
        """Connect, EHLO, STARTTLS/TLS and AUTH on one relay or all; nothing is sent."""
        plan = self.plan()
        relays = plan.relays
        if name is not None:
            known = tuple(r.name for r in relays)
            if name not in known:
                raise UnknownRelay(name, known)
            relays = tuple(r for r in relays if r.name == name)
        return [check_relay(relay, self.config.smtp_timeout) for relay in relays]

    def path_of(self, settings: GroupSettings) -> GroupPath:
        domain = settings.sender.address.rpartition("@")[2].lower()
        relays = self.plan().relays_for(domain, settings.group_code)
        key = self.keys.key_for(domain) if self.keys is not None else None
        return GroupPath(domain, tuple(r.name for r in relays), key.selector if key else None)
