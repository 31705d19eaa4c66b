"""The "Portal-E-Mails" tab as the help page lays it out: sections, labels and hints.

German labels and hints are the help page's own words
(``reference/portal-emails-setup.de.txt``), so that administrators find in
the browser what the product documentation tells them; English ones are
translations. The web UI builds its form from this description.

The names of the record's identifiers (statuses, event types, e-mail kinds,
webhook and breaker states, relay security, text sources) are not kept here:
they are read from the message catalogue (``dispatcher.i18n``), the one that
``GET /v1/labels`` answers from, so the page and the API say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from config_store.document import CHECKBOXES
from dispatcher.admin.relays import BREAKER_NAMES
from dispatcher.domain.events import Variable, template_variables
from dispatcher.domain.kinds import KIND_BY_NAME, KIND_BY_SECTION, KINDS, SECTIONS, EventType
from dispatcher.domain.statuses import STATUSES, WebhookStatus
from dispatcher.domain.texts import BUILTIN_LOCALES, builtin_texts
from dispatcher.i18n import catalogue
from dispatcher.smtp.relays import SECURITIES

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


# Names, not prose: identifiers the record and the API use, shown to
# administrators in their language. The words are the message catalogue's
# (dispatcher.i18n, the same that GET /v1/labels answers with), so that the
# page and the API never name one thing two ways ---------------------------


@dataclass(frozen=True)
class Label:
    name: str
    label_de: str
    label_en: str
    hint_de: str = ""
    hint_en: str = ""


def catalogue_labels(
    prefix: str, names: Iterable[str], *, hints: bool = False
) -> tuple[Label, ...]:
    """Labels of ``names`` from the catalogue's ``PREFIX.name`` (and ``hint.PREFIX.name``) keys.

    A name the catalogue lacks fails here, at import, rather than showing its
    key on the page (tests/unit/test_i18n.py checks both languages are complete).
    """

    def text(key: str, language: str) -> str:
        found = catalogue(language).strings.get(key)
        if found is None:
            raise LookupError(f"the message catalogue has no {key!r} in {language}; add it")
        return found

    found = []
    for name in names:
        key = f"{prefix}.{name}"
        found.append(
            Label(
                str(name),
                text(key, "de"),
                text(key, "en"),
                text(f"hint.{key}", "de") if hints else "",
                text(f"hint.{key}", "en") if hints else "",
            )
        )
    return tuple(found)


STATUS_LABELS = catalogue_labels("status", STATUSES, hints=True)
EVENT_TYPE_LABELS = catalogue_labels("event_type", EventType)
WEBHOOK_STATE_LABELS = catalogue_labels("webhook", WebhookStatus)
BREAKER_LABELS = catalogue_labels("breaker", BREAKER_NAMES.values(), hints=True)
SECURITY_LABELS = catalogue_labels("security", SECURITIES)
KIND_LABELS = catalogue_labels("kind", (kind.name for kind in KINDS))
SOURCE_LABELS = catalogue_labels("source", ("group", *(f"built-in ({t})" for t in BUILTIN_LOCALES)))

# Which table of the form description holds which catalogue prefix.
LABEL_TABLES = {
    "statuses": "status",
    "event_types": "event_type",
    "webhook_states": "webhook",
    "breaker_states": "breaker",
    "security": "security",
    "kinds": "kind",
    "sources": "source",
}


# Template variables ------------------------------------------------------------

# Parts of a record (contact, customer, ...), then their fields.
_RECORDS = {
    "recipient": ("Empfänger", "Recipient"),
    "contact": ("Kontakt", "Contact"),
    "new_contact": ("Neuer Hauptkontakt", "New main contact"),
    "old_contact": ("Bisheriger Hauptkontakt", "Former main contact"),
    "requested_by": ("Angefordert von", "Requested by"),
    "customer": ("Kunde", "Customer"),
    "group": ("Kundengruppe", "Customer group"),
}
_PARTS = {
    "email": ("E-Mail-Adresse", "e-mail address"),
    "name": ("Name", "name"),
    "locale": ("Sprache", "language"),
    "id": ("Kundennummer", "customer number"),
    "code": ("Code", "code"),
}
_PLAIN = {
    "event_id": ("Ereignis-ID", "Event ID"),
    "occurred_at": ("Zeitpunkt des Ereignisses", "When the event happened"),
    "self_initiated": (
        "Vom Kunden selbst initiiert (ja/nein)",
        "Requested by the customer themselves (yes/no)",
    ),
    "portal_url": ("Adresse des Portals", "The portal's address"),
    "reset_url": ("Link zum Zurücksetzen des Passworts", "Password reset link"),
    "expires_at": ("Link gültig bis", "Link valid until"),
    "username": ("Benutzername", "User name"),
}
# Names the event carries that an e-mail has no use for: ``type`` is fixed by
# the e-mail kind and ``customer_group`` is ``group.code``.
_HIDDEN_VARIABLES = frozenset({"type", "customer_group"})
_TIMESTAMPS = frozenset({"occurred_at", "expires_at"})
_FLAGS = frozenset({"self_initiated"})
# The person addressed first, the event's own data next, bookkeeping last.
_FIRST = ("recipient",)
_LAST = ("group", "event_id", "occurred_at")


@dataclass(frozen=True)
class VariableSpec:
    name: str  # dotted path, e.g. contact.name
    label_de: str
    label_en: str
    optional: bool  # may be empty: the inserted text copes with that
    insert: str  # what a click inserts into the subject or body


def _snippet(path: list[str], optional: list[bool]) -> str:
    dotted = ".".join(path)
    if path[-1] in _FLAGS:
        return f"{{% if {dotted} %}}{{% endif %}}"
    if path[-1] in _TIMESTAMPS:
        # The filter writes the date in the e-mail's language; empty stays empty.
        return f"{{{{ {dotted}|datetime }}}}"
    guards = [".".join(path[: i + 1]) for i, flag in enumerate(optional) if flag]
    if not guards:
        return f"{{{{ {dotted} }}}}"
    if guards == [dotted]:
        return f'{{{{ {dotted} or "" }}}}'
    return f'{{{{ {dotted} if {" and ".join(guards)} else "" }}}}'


def _variable_label(path: list[str]) -> tuple[str, str]:
    if len(path) == 1:
        return _PLAIN[path[0]]
    record_de, record_en = _RECORDS[path[0]]
    part_de, part_en = _PARTS[path[1]]
    return f"{record_de}: {part_de}", f"{record_en}: {part_en}"


def _walk(
    variables: Mapping[str, Variable], path: list[str], optional: list[bool]
) -> Iterator[VariableSpec]:
    for name, variable in variables.items():
        here, flags = [*path, name], [*optional, variable.optional]
        if variable.fields:
            yield from _walk(variable.fields, here, flags)
            continue
        label_de, label_en = _variable_label(here)
        yield VariableSpec(".".join(here), label_de, label_en, any(flags), _snippet(here, flags))


def _order(spec: VariableSpec) -> int:
    top = spec.name.split(".")[0]
    if top in _FIRST:
        return 0
    return 2 + _LAST.index(top) if top in _LAST else 1


def variables_for(kind_name: str) -> tuple[VariableSpec, ...]:
    """The variables an e-mail kind's subject and body may use, most useful first."""
    kind = KIND_BY_NAME[kind_name]
    offered = {
        name: variable
        for name, variable in template_variables(kind.event_type).items()
        if name not in _HIDDEN_VARIABLES
    }
    return tuple(sorted(_walk(offered, [], []), key=_order))


def builtin_defaults() -> dict[str, dict[str, dict[str, str]]]:
    """The built-in subject and body of every section, per built-in language."""
    texts = builtin_texts()
    return {
        locale: {
            section: dict(zip(("subject", "body"), texts[locale][kind.name], strict=True))
            for section, kind in KIND_BY_SECTION.items()
        }
        for locale in BUILTIN_LOCALES
    }


def _labels(labels: tuple[Label, ...]) -> list[dict[str, str]]:
    return [asdict(item) for item in labels]


def form_description() -> dict[str, Any]:
    """Everything the web UI needs to build its forms, as plain JSON data."""
    return {
        "sections": [
            {
                **asdict(section),
                "variables": [
                    asdict(v)
                    for v in (variables_for(section.kind) if section.key in KIND_BY_SECTION else ())
                ],
            }
            for section in SECTIONS_SPEC
        ],
        "kinds": [
            {**asdict(item), "section": KIND_BY_NAME[item.name].section} for item in KIND_LABELS
        ],
        "statuses": _labels(STATUS_LABELS),
        "event_types": _labels(EVENT_TYPE_LABELS),
        "webhook_states": _labels(WEBHOOK_STATE_LABELS),
        "breaker_states": _labels(BREAKER_LABELS),
        "security": _labels(SECURITY_LABELS),
        "sources": _labels(SOURCE_LABELS),
        "builtin": builtin_defaults(),
        "locales": list(BUILTIN_LOCALES),
    }
