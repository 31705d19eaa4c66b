"""A group's effective settings: its texts merged with the built-in ones, as plain data.

Workers take this immutable snapshot per event; the admin side uses it for
previews and for the "effective" export that shows where each value comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.domain.addresses import Mailbox, parse_mailbox
from dispatcher.domain.kinds import KINDS, Kind
from dispatcher.domain.locales import PRODUCT_LOCALE, normalize
from dispatcher.domain.texts import GroupText, ResolvedText, resolve


@dataclass(frozen=True)
class GroupSettings:
    """Everything a worker needs to plan and render one group's e-mails."""

    group_code: str
    group_name: str
    version: int | None
    access_requests_to: str
    send_from: str
    default_locale: str | None
    checkboxes: Mapping[str, bool]
    texts: Mapping[tuple[str, str], GroupText]
    sender: Mailbox = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sender", parse_mailbox(self.send_from, allow_display_name=True))

    @property
    def base_locale(self) -> str:
        return normalize(self.default_locale) if self.default_locale else PRODUCT_LOCALE

    def is_enabled(self, kind: Kind) -> bool:
        """Whether the kind's checkbox (if it has one) is ticked; unticked by default."""
        if kind.checkbox is None or kind.section is None:
            return True
        return self.checkboxes.get(kind.section, False)

    def text_for(self, kind: Kind, recipient_locale: str | None) -> ResolvedText:
        return resolve(kind, recipient_locale, self.default_locale, self.texts)


def effective_view(settings: GroupSettings, locale: str | None) -> dict[str, Any]:
    """Every field's effective value and where it comes from, for one locale."""
    view: dict[str, Any] = {
        "group": settings.group_code,
        "version": settings.version,
        "locale": locale or settings.base_locale,
        "internal_addresses": {
            "access_requests_to": {"value": settings.access_requests_to, "source": "group"},
            "send_from": {"value": settings.send_from, "source": "group"},
        },
        "default_locale": {
            "value": settings.base_locale,
            "source": "group" if settings.default_locale else "built-in",
        },
    }
    for kind in KINDS:
        resolved = settings.text_for(kind, locale)
        entry: dict[str, Any] = {}
        if kind.checkbox and kind.section:
            ticked = kind.section in settings.checkboxes
            entry[kind.checkbox] = {
                "value": settings.is_enabled(kind),
                "source": "group" if ticked else "built-in (off)",
            }
        entry["subject"] = {"value": resolved.subject, "source": resolved.subject_source}
        entry["body"] = {"value": resolved.body, "source": resolved.body_source}
        entry["language"] = resolved.locale
        view[kind.section or kind.name] = entry
    return view
