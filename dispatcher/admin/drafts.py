"""Previewing an unsaved draft: problems outside the previewed section are set aside."""

from __future__ import annotations

import copy
from typing import Any

from config_store.document import SettingsDocument, validate_document
from dispatcher.errors import FieldError, InvalidDocument

# Addresses a preview uses while the draft's own are not valid yet, so that
# typing a sender address does not blank out every preview on the page.
PLACEHOLDER_ADDRESS = "portal@example.com"


def _placeholder_addresses(document: dict[str, Any], key: str | None) -> None:
    addresses = document.get("internal_addresses")
    if key in {"access_requests_to", "send_from"} and isinstance(addresses, dict):
        addresses[key] = PLACEHOLDER_ADDRESS
    else:
        document["internal_addresses"] = {
            "access_requests_to": PLACEHOLDER_ADDRESS,
            "send_from": PLACEHOLDER_ADDRESS,
        }


def _concerns(parts: list[str], section: str | None) -> bool:
    """Whether an error at ``parts`` affects the preview of ``section``."""
    if not parts:
        return True
    if parts[0] == "translations":
        return len(parts) >= 3 and parts[2] == section
    return parts[0] == section


def _set_aside(document: dict[str, Any], parts: list[str]) -> bool:
    """Remove or replace the part of ``document`` an error points at; say if it changed."""
    top = parts[0]
    if top == "internal_addresses":
        _placeholder_addresses(document, parts[1] if len(parts) > 1 else None)
        return True
    if top == "translations" and len(parts) >= 2:
        translations = document.get("translations")
        if isinstance(translations, dict):
            texts = translations.get(parts[1])
            if len(parts) >= 3 and isinstance(texts, dict) and parts[2] in texts:
                del texts[parts[2]]
                return True
            if parts[1] in translations:
                del translations[parts[1]]
                return True
    if top in document:
        del document[top]
        return True
    return False


def lenient_draft(
    raw: object, section: str | None, subject: str = ""
) -> tuple[SettingsDocument, tuple[FieldError, ...]]:
    """Validate a draft for previewing one section; problems elsewhere are set aside.

    Returns the document to preview and the problems that were set aside.
    Problems in the previewed section itself raise ``InvalidDocument``.
    """
    if not isinstance(raw, dict):
        return validate_document(raw, subject), ()
    draft: dict[str, Any] = copy.deepcopy(raw)
    aside: list[FieldError] = []
    # Each round removes at least one faulty part; a document has few parts.
    for _ in range(16):
        try:
            return validate_document(draft, subject), tuple(aside)
        except InvalidDocument as exc:
            errors = exc.errors
        blocking = [e for e in errors if _concerns(e.path.split(".") if e.path else [], section)]
        if blocking:
            raise InvalidDocument(blocking, subject)
        changed = False
        for error in errors:
            changed = _set_aside(draft, error.path.split(".")) or changed
            aside.append(error)
        if not changed:
            raise InvalidDocument(errors, subject)
    return validate_document(draft, subject), tuple(aside)
