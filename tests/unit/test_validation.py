"""Table-driven validation of settings documents: every rule, every message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config_store.document import validate_document
from dispatcher.errors import FieldError, InvalidDocument
from tests.support.documents import full

Mutation = Callable[[dict[str, Any]], None]


def set_path(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return mutate


def delete_path(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


CASES: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation, field path, exact message or message prefix ending in "…")
    (
        "address-syntax",
        set_path("internal_addresses.access_requests_to", "portal-access@example"),
        "internal_addresses.access_requests_to",
        "is not a valid e-mail address (The part after the @-sign is not valid. It should "
        "have a period); write it as name@example.com",
    ),
    (
        "address-missing-at",
        set_path("internal_addresses.access_requests_to", "portal"),
        "internal_addresses.access_requests_to",
        "is not a valid e-mail address (An email address must have an @-sign); "
        "write it as name@example.com",
    ),
    (
        "address-display-name-not-allowed-for-inbox",
        set_path("internal_addresses.access_requests_to", "Inbox <portal@example.com>"),
        "internal_addresses.access_requests_to",
        "must be a bare address such as name@example.com, without a display name",
    ),
    (
        "address-empty",
        set_path("internal_addresses.send_from", ""),
        "internal_addresses.send_from",
        "must not be empty; enter an address such as name@example.com",
    ),
    (
        "address-header-injection",
        set_path("internal_addresses.send_from", "portal@example.com\r\nBcc: x@example.com"),
        "internal_addresses.send_from",
        "contains the control character U+000D; remove it",
    ),
    (
        "address-international-local-part",
        set_path("internal_addresses.send_from", "jörg@example.com"),
        "internal_addresses.send_from",
        "has non-ASCII characters before the @, which needs SMTPUTF8; use an ASCII address "
        "(internationalised domains after the @ are fine)",
    ),
    (
        "address-unclosed-display-name",
        set_path("internal_addresses.send_from", "Portal <portal@example.com"),
        "internal_addresses.send_from",
        "is not a valid e-mail address (An open angle bracket at the start of the email "
        "address has to be followed by a close angle bracket at the end); write it as "
        '"Name <name@example.com>" or name@example.com',
    ),
    (
        "address-missing",
        delete_path("internal_addresses.send_from"),
        "internal_addresses.send_from",
        "is required; add it",
    ),
    (
        "section-missing-addresses",
        delete_path("internal_addresses"),
        "internal_addresses",
        "is required; add it",
    ),
    (
        "subject-newline",
        set_path("password_reset.subject", "Passwort\nBcc: evil@example.com"),
        "password_reset.subject",
        "must be a single line; remove the line break",
    ),
    (
        "subject-carriage-return",
        set_path("forgotten_username.subject", "Name\rX"),
        "forgotten_username.subject",
        "must be a single line; remove the line break",
    ),
    (
        "subject-zero-width",
        set_path("forgotten_username.subject", "Name\u200bX"),
        "forgotten_username.subject",
        "contains the invisible or control character U+200B ZERO WIDTH SPACE; remove it",
    ),
    (
        "subject-bidi-override",
        set_path("forgotten_username.subject", "Rechnung \u202egpj.exe"),
        "forgotten_username.subject",
        "contains the invisible or control character U+202E RIGHT-TO-LEFT OVERRIDE; remove it",
    ),
    (
        "subject-too-long",
        set_path("new_validation.subject", "x" * 256),
        "new_validation.subject",
        "is too long; use at most 255 characters",
    ),
    (
        "body-too-long",
        set_path("new_validation.body", "x" * 20_001),
        "new_validation.body",
        "is too long; use at most 20000 characters",
    ),
    (
        "body-nul",
        set_path("new_validation.body", "Hallo\x00Welt"),
        "new_validation.body",
        "contains the invisible or control character U+0000; remove it",
    ),
    (
        "template-variable-of-other-event",
        set_path("new_validation.body", "Link: {{ reset_url }}"),
        "new_validation.body",
        "line 1: {{ reset_url }} is not offered by the customer validation confirmation "
        "e-mail; use one of: contact, customer, customer_group, event_id, group, occurred_at, "
        "portal_url, recipient, type",
    ),
    (
        "template-misspelt-attribute",
        set_path("password_reset.body", "Hallo\n{{ contact.nmae }}"),
        "password_reset.body",
        "line 2: {{ contact.nmae }} does not exist; contact has: email, name, locale",
    ),
    (
        "template-syntax-error-names-line",
        set_path("password_reset.body", "Zeile 1\nZeile 2\n{% if reset_url %}offen"),
        "password_reset.body",
        "line 3: syntax error: Unexpected end of template. Jinja was looking for the "
        "following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be "
        "closed is 'if'.",
    ),
    (
        "template-underscore-attribute",
        set_path("password_reset.subject", "{{ reset_url.__class__ }}"),
        "password_reset.subject",
        "line 1: attributes starting with '_' are not allowed (__class__)",
    ),
    (
        "template-attr-filter",
        set_path("password_reset.subject", "{{ reset_url|attr('upper') }}"),
        "password_reset.subject",
        "line 1: the filter 'attr' is not available; use one of: …",
    ),
    (
        "template-optional-field-unchecked",
        set_path("password_reset.subject", "Gültig bis {{ expires_at.upper() }}"),
        "password_reset.subject",
        "fails with optional fields left out: uses a value the event does not have: 'None' "
        "has no attribute 'upper'; check optional values first, e.g. {% if expires_at %}",
    ),
    (
        "template-runaway-loop",
        set_path(
            "password_reset.body",
            "{% for a in range(5000) %}{% for b in range(5000) %}{% endfor %}{% endfor %}",
        ),
        "password_reset.body",
        "fails with the sample event: the template takes more than 200000 steps",
    ),
    (
        "template-huge-output",
        set_path("password_reset.body", "{{ 'x' * 10000000 }}"),
        "password_reset.body",
        "fails with the sample event: a repetition grows beyond the limit",
    ),
    (
        "template-empty-subject",
        set_path("password_reset.subject", "{{ '' }}"),
        "password_reset.subject",
        "renders as an empty subject with the sample event; add some text",
    ),
    (
        "unknown-key-did-you-mean",
        set_path("password_reset.subjct", "Neues Passwort"),
        "password_reset.subjct",
        "unknown key 'subjct' in password_reset; did you mean 'subject'?",
    ),
    (
        "unknown-section-did-you-mean",
        set_path("pasword_reset", {"subject": "x"}),
        "pasword_reset",
        "unknown key 'pasword_reset' in the document; did you mean 'password_reset'?",
    ),
    (
        "unknown-key-no-match",
        set_path("password_reset.zzz", "x"),
        "password_reset.zzz",
        "unknown key 'zzz' in password_reset; allowed here: subject, body",
    ),
    (
        "checkbox-not-boolean",
        set_path("notify_new_main_contact.send_email", "yes"),
        "notify_new_main_contact.send_email",
        "must be true or false, not the text 'yes'",
    ),
    (
        "checkbox-number",
        set_path("customer_access_request.send_to_customers_not_self_initiated", 1),
        "customer_access_request.send_to_customers_not_self_initiated",
        "must be true or false, not the number 1",
    ),
    (
        "checkbox-only-in-its-section",
        set_path("password_reset.send_email", True),
        "password_reset.send_email",
        "unknown key 'send_email' in password_reset; allowed here: subject, body",
    ),
    (
        "subject-not-text",
        set_path("password_reset.subject", 42),
        "password_reset.subject",
        "must be text, not the number 42",
    ),
    (
        "section-not-mapping",
        set_path("password_reset", "Passwort"),
        "password_reset",
        "must be a mapping of keys to values, not the text 'Passwort'",
    ),
    (
        "default-locale-invalid",
        set_path("default_locale", "deutsch!"),
        "default_locale",
        "'deutsch!' is not a valid language tag; use one such as de, en or de-CH",
    ),
    (
        "translation-locale-invalid",
        set_path("translations.english", {"password_reset": {"subject": "x"}}),
        "translations.english",
        "'english' is not a valid language tag; use one such as de, en or de-CH",
    ),
    (
        "translation-locale-duplicate",
        set_path("translations.EN", {"password_reset": {"subject": "x"}}),
        "translations.EN",
        "is the same language as 'en'; merge the two",
    ),
    (
        "translation-checkbox-not-allowed",
        set_path("translations.en.notify_new_main_contact", {"send_email": True}),
        "translations.en.notify_new_main_contact.send_email",
        "unknown key 'send_email' in translations.en.notify_new_main_contact; allowed here: "
        "subject, body",
    ),
    (
        "translation-template-checked-too",
        set_path("translations.en.new_validation", {"body": "{{ username }}"}),
        "translations.en.new_validation.body",
        "line 1: {{ username }} is not offered by the customer validation confirmation e-mail; "
        "use one of: …",
    ),
]


def _matches(error: FieldError, path: str, message: str) -> bool:
    if error.path != path:
        return False
    if message.endswith("…"):
        return error.message.startswith(message[:-1])
    return error.message == message


@pytest.mark.parametrize(
    ("mutation", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_rule_reports_its_field_and_message(
    mutation: Mutation, path: str, message: str
) -> None:
    document = full()
    mutation(document)
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document)
    errors = caught.value.errors
    assert any(_matches(e, path, message) for e in errors), [str(e) for e in errors]
    # One broken field yields errors for that field only.
    assert {e.path for e in errors} == {path}, [str(e) for e in errors]


def test_the_full_document_is_valid() -> None:
    validate_document(full())


def test_every_error_is_reported_at_once() -> None:
    document = full()
    document["internal_addresses"]["send_from"] = "not an address"
    document["password_reset"]["subject"] = "Zeile 1\nZeile 2"
    document["new_validation"]["body"] = "{{ reset_url }}"
    with pytest.raises(InvalidDocument) as caught:
        validate_document(document, "for group 'RETAIL'")
    paths = [e.path for e in caught.value.errors]
    assert paths == [
        "internal_addresses.send_from",
        "new_validation.body",
        "password_reset.subject",
    ]
    summary = str(caught.value)
    assert summary.startswith("invalid settings for group 'RETAIL': internal_addresses.send_from")
    assert summary.endswith("(and 2 more)")
    assert "\n" not in summary


@pytest.mark.parametrize(
    "raw",
    [None, [], "text", 5],
    ids=["null", "list", "string", "number"],
)
def test_a_document_must_be_a_mapping(raw: object) -> None:
    with pytest.raises(InvalidDocument, match="must be a mapping with internal_addresses"):
        validate_document(raw)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("portal@example.com", True),
        ("Kundenportal <portal@example.com>", True),
        ('"Müller, Hans" <hans@example.com>', True),
        ("portal@bücher.example", True),  # internationalised domain: sent as IDNA
        ("Portal <jörg@example.com>", False),
        ("portal@example.com, other@example.com", False),
        ("<portal@example.com>", True),
    ],
)
def test_send_from_address_forms(value: str, accepted: bool) -> None:
    document = full()
    document["internal_addresses"]["send_from"] = value
    if accepted:
        validate_document(document)
    else:
        with pytest.raises(InvalidDocument):
            validate_document(document)


def test_empty_texts_are_allowed_and_mean_built_in() -> None:
    document = full()
    document["password_reset"] = {"subject": "", "body": None}
    validated = validate_document(document)
    assert validated.password_reset is not None
    assert validated.password_reset.subject == ""


def test_crlf_bodies_are_stored_with_lf() -> None:
    document = full()
    document["password_reset"]["body"] = "Zeile 1\r\nZeile 2 {{ reset_url }}"
    validated = validate_document(document)
    assert validated.password_reset is not None
    assert validated.password_reset.body == "Zeile 1\nZeile 2 {{ reset_url }}"
