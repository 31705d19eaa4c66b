"""A group's effective settings: its document merged with the built-in texts.

Workers take this immutable snapshot per event; the admin side uses it for
previews and for the "effective" export that shows where each value comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from config_store.document import CHECKBOXES, SECTION_MODELS, SettingsDocument
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


def effective_settings(
    document: SettingsDocument, group_code: str, group_name: str, version: int | None
) -> GroupSettings:
    """Build the snapshot from a validated document; pure, no I/O."""
    base = normalize(document.default_locale) if document.default_locale else PRODUCT_LOCALE
    texts: dict[tuple[str, str], GroupText] = {}
    checkboxes: dict[str, bool] = {}
    for section in SECTION_MODELS:
        part = getattr(document, section)
        if part is None:
            continue
        texts[(base, section)] = GroupText(part.subject, part.body, "group", "group")
        ticked = getattr(part, CHECKBOXES[section]) if section in CHECKBOXES else None
        if ticked is not None:
            checkboxes[section] = ticked
    for tag, translation in (document.translations or {}).items():
        locale = normalize(tag)
        source = f"group translation ({tag})"
        for section in SECTION_MODELS:
            part = getattr(translation, section)
            if part is None:
                continue
            earlier = texts.get((locale, section))
            texts[(locale, section)] = _overlay(earlier, part.subject, part.body, source)
    return GroupSettings(
        group_code=group_code,
        group_name=group_name,
        version=version,
        access_requests_to=document.internal_addresses.access_requests_to,
        send_from=document.internal_addresses.send_from,
        default_locale=document.default_locale,
        checkboxes=MappingProxyType(checkboxes),
        texts=MappingProxyType(texts),
    )


def _overlay(
    earlier: GroupText | None, subject: str | None, body: str | None, source: str
) -> GroupText:
    # A translation in the group's own base language refines the base texts
    # field by field instead of replacing the whole section.
    if earlier is None:
        return GroupText(subject, body, source, source)
    return GroupText(
        subject if subject and subject.strip() else earlier.subject,
        body if body and body.strip() else earlier.body,
        source if subject and subject.strip() else earlier.subject_source,
        source if body and body.strip() else earlier.body_source,
    )


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
