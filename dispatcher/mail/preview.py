"""Previews: one e-mail rendered with sample data or a given event, nothing sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatcher.domain.addresses import Mailbox
from dispatcher.domain.events import parse_event, recipient_of
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.domain.kinds import Kind
from dispatcher.domain.locales import locale_problem
from dispatcher.domain.samples import context_for, sample_event
from dispatcher.domain.texts import ResolvedText
from dispatcher.errors import FieldError, InvalidEvent
from dispatcher.mail.render import RenderedEmail, render_email


@dataclass(frozen=True)
class Preview:
    kind: str
    to: str
    sender: str
    text: ResolvedText
    email: RenderedEmail

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "to": self.to,
            "from": self.sender,
            "language": self.text.locale,
            "subject": self.email.subject,
            "subject_source": self.text.subject_source,
            "body_source": self.text.body_source,
            "text": self.email.text,
            "html": self.email.html,
        }


def preview(
    settings: GroupSettings, kind: Kind, locale: str | None = None, event: object = None
) -> Preview:
    """Render ``kind`` as ``settings`` would send it; raise a one-line error if it fails."""
    if locale is not None:
        problem = locale_problem(locale)
        if problem:
            raise InvalidEvent([FieldError("locale", problem)])
    if event is None:
        raw = sample_event(kind.event_type)
        parsed = parse_event(raw)
        # Sample contacts carry a locale; a preview without --locale shows the
        # group's own language instead.
        recipient_locale = locale
    else:
        parsed = parse_event(event)
        if parsed.type != kind.event_type.value:
            raise InvalidEvent(
                [
                    FieldError(
                        "type",
                        f"is {parsed.type!r}, but {kind.name} e-mails come from "
                        f"{kind.event_type.value!r} events; pass such an event",
                    )
                ]
            )
        contact = recipient_of(parsed, kind)
        recipient_locale = locale or (contact.locale if contact else None)
    context = context_for(
        parsed, kind, settings.group_code, settings.group_name, settings.access_requests_to
    )
    text = settings.text_for(kind, recipient_locale)
    email = render_email(text, context)
    recipient = context["recipient"]
    to = Mailbox(recipient["email"], recipient.get("name")).header()
    return Preview(kind.name, to, settings.send_from, text, email)
