"""The "Portal-E-Mails" tab as the help page lays it out: sections, labels and hints.

German labels and hints are the help page's own words
(``reference/portal-emails-setup.de.txt``), so that administrators find in
the browser what the product documentation tells them; English ones are
translations. The web UI builds its form from this description.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from config_store.document import CHECKBOXES
from dispatcher.domain.kinds import KIND_BY_SECTION, KINDS, SECTIONS
from dispatcher.domain.statuses import STATUSES

_PORTAL = '"Fakturierungs- und Debitorenportal"'


@dataclass(frozen=True)
class FieldSpec:
    key: str
    type: str  # address, sender, checkbox, subject or body
    label_de: str
    label_en: str
    hint_de: str
    hint_en: str


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title_de: str
    title_en: str
    # The e-mail kind whose preview the section shows.
    kind: str
    fields: tuple[FieldSpec, ...]


def _texts(
    section: str,
    labels: tuple[str, str, str, str],
    hints: tuple[str, str, str, str],
    checkbox: FieldSpec | None = None,
) -> SectionSpec:
    kind = KIND_BY_SECTION[section]
    subject_de, body_de, subject_en, body_en = labels
    hint_subject_de, hint_body_de, hint_subject_en, hint_body_en = hints
    fields = (
        *((checkbox,) if checkbox else ()),
        FieldSpec("subject", "subject", subject_de, subject_en, hint_subject_de, hint_subject_en),
        FieldSpec("body", "body", body_de, body_en, hint_body_de, hint_body_en),
    )
    return SectionSpec(section, kind.label_de, kind.label_en, kind.name, fields)


def _send_email(who_de: str, who_en: str) -> FieldSpec:
    return FieldSpec(
        "send_email",
        "checkbox",
        "E-Mail senden",
        "Send e-mail",
        "Aktivieren Sie dieses Kontrollkästchen, um einen Kunden zu benachrichtigen, "
        f"wenn er {who_de} für seine Firma ist.",
        f"Tick this box to notify a customer when they {who_en} for their company.",
    )


SECTIONS_SPEC: tuple[SectionSpec, ...] = (
    SectionSpec(
        "internal_addresses",
        "Interne E-Mail-Adressen",
        "Internal e-mail addresses",
        "access_request.internal",
        (
            FieldSpec(
                "access_requests_to",
                "address",
                "Zugriffsanforderungs-E-Mails senden an",
                "Send access request e-mails to",
                "Geben Sie eine interne E-Mail-Adresse an, an die Zugriffsanforderungen für die "
                f"Lösung {_PORTAL} gesendet werden sollen.",
                "An internal e-mail address that receives the portal's access requests.",
            ),
            FieldSpec(
                "send_from",
                "sender",
                "E-Mail-Nachrichten senden von",
                "Send e-mail messages from",
                "Geben Sie eine interne E-Mail-Adresse an, von der aus Benachrichtigungen "
                f"versendet werden sollen, die die Lösung {_PORTAL} betreffen.",
                "An internal e-mail address that the portal's notifications are sent from; "
                'a display name is allowed: "Customer portal <portal@example.com>".',
            ),
        ),
    ),
    _texts(
        "customer_access_request",
        (
            "Zugriffsanforderung (Betreff)",
            "Zugriffsanforderung (Inhalt)",
            "Access request (subject)",
            "Access request (body)",
        ),
        (
            "Geben Sie einen Betreff für Kundenzugriffsanforderung-E-Mails an.",
            "Geben Sie den Inhalt für Kundenzugriffsanforderung-E-Mails an.",
            "The subject of customer access request e-mails.",
            "The body of customer access request e-mails.",
        ),
        FieldSpec(
            "send_to_customers_not_self_initiated",
            "checkbox",
            "E-Mail an Kunden senden, die den Portalzugriff nicht selbst initiiert haben",
            "Send e-mail to customers who did not request portal access themselves",
            "Aktivieren Sie dieses Kontrollkästchen, um Kundenzugriffsanforderungs-E-Mails an "
            "Kunden zu senden, die den Portalzugriff nicht selbst initiiert haben.",
            "Tick this box to send customer access request e-mails to customers who did not "
            "request portal access themselves.",
        ),
    ),
    _texts(
        "new_validation",
        (
            "Neue Validierung (Betreff)",
            "Neue Validierung (Inhalt)",
            "New validation (subject)",
            "New validation (body)",
        ),
        (
            "Geben Sie einen Betreff für Bestätigungs-E-Mails für neue Kundenvalidierungen an.",
            "Geben Sie den Inhalt für Bestätigungs-E-Mails für neue Kundenvalidierungen an.",
            "The subject of confirmation e-mails for new customer validations.",
            "The body of confirmation e-mails for new customer validations.",
        ),
    ),
    _texts(
        "notify_new_main_contact",
        ("E-Mail-Betreff", "E-Mail-Inhalt", "E-mail subject", "E-mail body"),
        (
            "Geben Sie einen Betreff für E-Mails für Benachrichtigungen von neuen "
            "Hauptkontakten an.",
            "Geben Sie den Inhalt für E-Mails für Benachrichtigungen von neuen Hauptkontakten an.",
            "The subject of e-mails notifying new main contacts.",
            "The body of e-mails notifying new main contacts.",
        ),
        _send_email("der neue Hauptkontakt", "become the new main contact"),
    ),
    _texts(
        "notify_old_main_contact",
        ("E-Mail-Betreff", "E-Mail-Inhalt", "E-mail subject", "E-mail body"),
        (
            "Geben Sie einen Betreff für E-Mails für Benachrichtigungen von alten "
            "Hauptkontakten an.",
            "Geben Sie den Inhalt für E-Mails für Benachrichtigungen von alten Hauptkontakten an.",
            "The subject of e-mails notifying former main contacts.",
            "The body of e-mails notifying former main contacts.",
        ),
        _send_email("nicht mehr der Hauptkontakt", "are no longer the main contact"),
    ),
    _texts(
        "forgotten_username",
        (
            "Benutzername vergessen (Betreff)",
            "Benutzername vergessen (Inhalt)",
            "Forgotten user name (subject)",
            "Forgotten user name (body)",
        ),
        (
            "Geben Sie einen Betreff für E-Mails zu vergessenen Benutzernamen an.",
            "Geben Sie den Inhalt für E-Mails zu vergessenen Benutzernamen an.",
            "The subject of forgotten user name e-mails.",
            "The body of forgotten user name e-mails.",
        ),
    ),
    _texts(
        "password_reset",
        (
            "Passwort zurücksetzen (Betreff)",
            "Passwort zurücksetzen (Inhalt)",
            "Password reset (subject)",
            "Password reset (body)",
        ),
        (
            "Geben Sie einen Betreff für E-Mails zum Zurücksetzen des Passworts an.",
            "Geben Sie den Inhalt für E-Mails zum Zurücksetzen des Passworts an.",
            "The subject of password reset e-mails.",
            "The body of password reset e-mails.",
        ),
    ),
)

# The help page's order is the settings document's order; a new section in
# one must show up in the other.
assert tuple(s.key for s in SECTIONS_SPEC[1:]) == SECTIONS
assert all(
    any(f.key == CHECKBOXES[s.key] for f in s.fields) for s in SECTIONS_SPEC if s.key in CHECKBOXES
)


def form_description() -> dict[str, Any]:
    """Everything the web UI needs to build its forms, as plain JSON data."""
    return {
        "sections": [asdict(section) for section in SECTIONS_SPEC],
        "kinds": [
            {"name": k.name, "section": k.section, "label_de": k.label_de, "label_en": k.label_en}
            for k in KINDS
        ],
        "statuses": list(STATUSES),
        "locales": ["de", "en"],
    }
