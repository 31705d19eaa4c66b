"""Settings documents used across tests."""

from __future__ import annotations

import copy
from typing import Any

FULL: dict[str, Any] = {
    "internal_addresses": {
        "access_requests_to": "portal-access@example.com",
        "send_from": "Kundenportal <portal@example.com>",
    },
    "customer_access_request": {
        "send_to_customers_not_self_initiated": True,
        "subject": "Zugang zum Kundenportal für {{ customer.name or customer.id }}",
        "body": "Guten Tag {{ recipient.name or '' }},\n\nIhr Zugang wurde beantragt.\n",
    },
    "new_validation": {
        "subject": "Willkommen, {{ customer.name or customer.id }}",
        "body": "Ihr Zugang ist freigeschaltet.\n{% if portal_url %}{{ portal_url }}{% endif %}\n",
    },
    "notify_new_main_contact": {
        "send_email": True,
        "subject": "Neuer Hauptkontakt",
        "body": "Sie sind jetzt Hauptkontakt.\n",
    },
    "notify_old_main_contact": {
        "send_email": False,
        "subject": "Hauptkontakt geändert",
        "body": "Neuer Hauptkontakt ist {{ new_contact.email }}.\n",
    },
    "forgotten_username": {
        "subject": "Ihr Benutzername",
        "body": "Ihr Benutzername lautet {{ username }}.\n",
    },
    "password_reset": {
        "subject": "Passwort zurücksetzen",
        "body": (
            "Link: {{ reset_url }}\n"
            "{% if expires_at %}Gültig bis {{ expires_at|datetime }}{% endif %}\n"
        ),
    },
    "default_locale": "de",
    "translations": {
        "en": {
            "password_reset": {
                "subject": "Reset your password",
                "body": "Link: {{ reset_url }}\n",
            },
        },
    },
}

ADDRESSES_ONLY: dict[str, Any] = {
    "internal_addresses": {
        "access_requests_to": "portal-access@example.com",
        "send_from": "portal@example.com",
    },
}


def full() -> dict[str, Any]:
    return copy.deepcopy(FULL)


def addresses_only() -> dict[str, Any]:
    return copy.deepcopy(ADDRESSES_ONLY)


# The help page's sections, in its order and with its words.
HELP_PAGE_SECTIONS = [
    "Interne E-Mail-Adressen",
    "Kundenzugriffsanforderung",
    "Bestätigung der Kundenvalidierung",
    "Neuen Hauptkontakt benachrichtigen",
    "Alten Hauptkontakt benachrichtigen",
    "Benutzernamen vergessen",
    "Passwort zurücksetzen",
]
HELP_PAGE_SECTION_KEYS = [
    "internal_addresses",
    "customer_access_request",
    "new_validation",
    "notify_new_main_contact",
    "notify_old_main_contact",
    "forgotten_username",
    "password_reset",
]
