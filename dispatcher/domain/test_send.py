"""A test send: one e-mail kind of a group, with sample data, to one address."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.domain.addresses import parse_mailbox
from dispatcher.domain.kinds import lookup_kind
from dispatcher.domain.locales import locale_problem
from dispatcher.errors import DispatcherError


@dataclass(frozen=True)
class TestSend:
    """A request to send one e-mail kind of a group, with sample data, to one address."""

    event_id: str
    group: str
    kind: str
    address: str
    locale: str | None
    actor: str

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> TestSend:
        try:
            event_id, group, kind, address = (
                str(raw[key]) for key in ("event_id", "group", "kind", "address")
            )
        except KeyError as exc:
            raise DispatcherError(f"test send: {exc.args[0]} is required") from None
        locale = raw.get("locale")
        if locale is not None and locale_problem(str(locale)):
            raise DispatcherError(f"locale: {locale_problem(str(locale))}")
        try:
            parse_mailbox(address)
        except ValueError as exc:
            raise DispatcherError(f"address: {exc}") from None
        return cls(
            event_id=event_id,
            group=group,
            kind=lookup_kind(kind).name,
            address=address,
            locale=str(locale) if locale else None,
            actor=str(raw.get("actor") or "unknown"),
        )
