"""The settings document of CONTRACT §1 and its all-or-nothing validation.

Pydantic checks the shape (keys, types, unknown keys) and, through the field
validators below, every value: addresses, single-line subjects, language
tags, and templates against the variables their e-mail's event offers. All
problems are collected in one pass and reported together with their paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dispatcher.domain.addresses import parse_mailbox
from dispatcher.domain.events import template_variables
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.domain.kinds import KIND_BY_NAME, SECTIONS
from dispatcher.domain.locales import PRODUCT_LOCALE, locale_problem, normalize
from dispatcher.domain.modelerrors import field_errors
from dispatcher.domain.samples import sample_contexts
from dispatcher.domain.texts import GroupText
from dispatcher.domain.textsafety import first_forbidden, single_line_problem
from dispatcher.errors import DispatcherError, FieldError, InvalidDocument, TemplateProblem
from dispatcher.mail.render import clean_subject
from dispatcher.mail.templating import check_source, compile_text, render

MAX_SUBJECT_SOURCE = 255
MAX_BODY_SOURCE = 20_000


def _normalize_line_breaks(value: Any) -> Any:
    # Browsers submit text areas with CRLF; bodies are stored with LF only.
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


SubjectSource = Annotated[str, Field(max_length=MAX_SUBJECT_SOURCE)]
BodySource = Annotated[
    str, BeforeValidator(_normalize_line_breaks), Field(max_length=MAX_BODY_SOURCE)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class InternalAddresses(_Strict):
    """Interne E-Mail-Adressen."""

    access_requests_to: str = Field(description="Zugriffsanforderungs-E-Mails senden an")
    send_from: str = Field(description="E-Mail-Nachrichten senden von")

    @field_validator("access_requests_to")
    @classmethod
    def _bare_address(cls, value: str) -> str:
        parse_mailbox(value)
        return value

    @field_validator("send_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        parse_mailbox(value, allow_display_name=True)
        return value


class _Texts(_Strict):
    """A subject and a body for one kind of e-mail; empty means built-in text."""

    KIND: ClassVar[str]

    subject: SubjectSource | None = None
    body: BodySource | None = None

    @field_validator("subject")
    @classmethod
    def _check_subject(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        problem = single_line_problem(value)
        if problem:
            raise ValueError(problem)
        return value if _trusted(info) else _check_template(cls.KIND, value, "subject")

    @field_validator("body")
    @classmethod
    def _check_body(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        bad = first_forbidden(value, allow_newlines=True)
        if bad:
            raise ValueError(f"contains the invisible or control character {bad}; remove it")
        return value if _trusted(info) else _check_template(cls.KIND, value, "body")


def _trusted(info: ValidationInfo) -> bool:
    # Documents read back from the store were fully checked when saved; the
    # template trial renders are skipped for them to keep snapshots cheap.
    return bool(info.context and info.context.get("trusted"))


def _check_template(kind_name: str, source: str, field: str) -> str:
    if not source.strip():
        return source
    kind = KIND_BY_NAME[kind_name]
    what = f"the {kind.label_en.lower()} e-mail"
    findings = check_source(source, template_variables(kind.event_type), what)
    if findings:
        raise ValueError("; ".join(str(finding) for finding in findings))
    # A trial render with sample events, once with every optional field and
    # once without, catches what a static look cannot: a value used without
    # checking that it is there, arithmetic on text, limits exceeded.
    template = compile_text(source)
    for label, context in sample_contexts(kind):
        try:
            output = render(template, context)
        except TemplateProblem as exc:
            hint = (
                "; check optional values first, e.g. {% if expires_at %}"
                if "left out" in label
                else ""
            )
            raise ValueError(f"fails with {label}: {exc}{hint}") from None
        if field == "subject" and not clean_subject(output):
            raise ValueError(f"renders as an empty subject with {label}; add some text")
    return source


class CustomerAccessRequestTexts(_Texts):
    KIND = "access_request.customer"


class NewValidationTexts(_Texts):
    KIND = "validation.new"


class NewMainContactTexts(_Texts):
    KIND = "main_contact.new"


class OldMainContactTexts(_Texts):
    KIND = "main_contact.old"


class ForgottenUsernameTexts(_Texts):
    KIND = "username.forgotten"


class PasswordResetTexts(_Texts):
    KIND = "password.reset"


class CustomerAccessRequest(CustomerAccessRequestTexts):
    """Kundenzugriffsanforderung."""

    send_to_customers_not_self_initiated: bool | None = Field(
        default=None,
        description=("E-Mail an Kunden senden, die den Portalzugriff nicht selbst initiiert haben"),
    )


class NewValidation(NewValidationTexts):
    """Bestätigung der Kundenvalidierung."""


class NotifyNewMainContact(NewMainContactTexts):
    """Neuen Hauptkontakt benachrichtigen."""

    send_email: bool | None = Field(default=None, description="E-Mail senden")


class NotifyOldMainContact(OldMainContactTexts):
    """Alten Hauptkontakt benachrichtigen."""

    send_email: bool | None = Field(default=None, description="E-Mail senden")


class ForgottenUsername(ForgottenUsernameTexts):
    """Benutzernamen vergessen."""


class PasswordReset(PasswordResetTexts):
    """Passwort zurücksetzen."""


class Translation(_Strict):
    """Texts in one further language; any section, subject and body only."""

    customer_access_request: CustomerAccessRequestTexts | None = None
    new_validation: NewValidationTexts | None = None
    notify_new_main_contact: NewMainContactTexts | None = None
    notify_old_main_contact: OldMainContactTexts | None = None
    forgotten_username: ForgottenUsernameTexts | None = None
    password_reset: PasswordResetTexts | None = None


def _locale_key(value: str) -> str:
    problem = locale_problem(value)
    if problem:
        raise ValueError(problem)
    return value


LocaleKey = Annotated[str, AfterValidator(_locale_key)]


class SettingsDocument(_Strict):
    """The "Portal e-mails" tab of one customer group."""

    internal_addresses: InternalAddresses
    customer_access_request: CustomerAccessRequest | None = None
    new_validation: NewValidation | None = None
    notify_new_main_contact: NotifyNewMainContact | None = None
    notify_old_main_contact: NotifyOldMainContact | None = None
    forgotten_username: ForgottenUsername | None = None
    password_reset: PasswordReset | None = None
    default_locale: LocaleKey | None = None
    translations: dict[LocaleKey, Translation] | None = None


SECTION_MODELS: Mapping[str, type[_Texts]] = {
    name: SettingsDocument.model_fields[name].annotation.__args__[0]  # type: ignore[union-attr]
    for name in SECTIONS
}
CHECKBOXES: Mapping[str, str] = {
    "customer_access_request": "send_to_customers_not_self_initiated",
    "notify_new_main_contact": "send_email",
    "notify_old_main_contact": "send_email",
}
TOP_LEVEL_ORDER = ("internal_addresses", *SECTIONS, "default_locale", "translations")


def validate_document(raw: object, subject: str = "") -> SettingsDocument:
    """Check a whole document; raise ``InvalidDocument`` listing every problem."""
    if not isinstance(raw, dict):
        raise InvalidDocument(
            [FieldError("", "the settings must be a mapping with internal_addresses and sections")],
            subject,
        )
    errors = _duplicate_locales(raw)
    try:
        document = SettingsDocument.model_validate(raw)
    except ValidationError as exc:
        errors.extend(field_errors(SettingsDocument, exc))
    if errors:
        raise InvalidDocument(sorted(errors, key=lambda e: _path_rank(e.path)), subject)
    return document


def _duplicate_locales(raw: Mapping[str, Any]) -> list[FieldError]:
    translations = raw.get("translations")
    if not isinstance(translations, dict):
        return []
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for tag in translations:
        if not isinstance(tag, str) or locale_problem(tag):
            continue
        canonical_tag = normalize(tag)
        if canonical_tag in seen:
            errors.append(
                FieldError(
                    f"translations.{tag}",
                    f"is the same language as {seen[canonical_tag]!r}; merge the two",
                )
            )
        seen[canonical_tag] = tag
    return errors


def _path_rank(path: str) -> tuple[int, str]:
    top = path.split(".", 1)[0]
    rank = TOP_LEVEL_ORDER.index(top) if top in TOP_LEVEL_ORDER else len(TOP_LEVEL_ORDER)
    return rank, path


def canonical(document: SettingsDocument) -> dict[str, Any]:
    """The document as plain data in contract order, without empty values."""
    data = document.model_dump(mode="json", exclude_none=True)
    ordered: dict[str, Any] = {}
    for key in TOP_LEVEL_ORDER:
        if key not in data:
            continue
        value = data[key]
        if key in CHECKBOXES:
            value = _section_order(value, CHECKBOXES[key])
        elif key == "translations":
            value = {
                tag: {name: _section_order(texts, None) for name, texts in sections.items()}
                for tag, sections in value.items()
            }
        ordered[key] = value
    return ordered


def _section_order(section: dict[str, Any], checkbox: str | None) -> dict[str, Any]:
    keys = ([checkbox] if checkbox else []) + ["subject", "body"]
    return {key: section[key] for key in keys if key in section}


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line texts as YAML block literals, readable and editable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def dump(data: Mapping[str, Any], fmt: str) -> str:
    """Serialise as ``yaml`` or ``json``; both read back to the same data."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return yaml.dump(
        dict(data), Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, width=100
    )


# Limits of what any input (a YAML or JSON document, an API request's body)
# may be: a settings document nests 4 levels and holds a few hundred values,
# a list of 1,000 events some 20,000. Deeper or bigger input is refused with
# the limit named, before a recursive parser or validator meets it.
MAX_NESTING = 32
MAX_VALUES = 50_000


def structure_problem(
    data: object, *, max_depth: int = MAX_NESTING, max_values: int = MAX_VALUES
) -> str | None:
    """Say why ``data`` nests too deep or holds too many values, or return None.

    Iterative, and it stops at the first limit exceeded, so neither a list
    nested 100,000 levels deep nor a YAML alias bomb (values shared, not
    copied, a billion times over) costs more than ``max_values`` steps.
    """
    stack: list[tuple[object, int]] = [(data, 1)]
    values = 0
    while stack:
        value, depth = stack.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return nesting_message(max_depth)
        for child in children:
            values += 1
            if values > max_values:
                return f"holds more than {max_values} values; the limit is {max_values}"
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return None


def nesting_message(max_depth: int = MAX_NESTING) -> str:
    return f"nests lists and mappings more than {max_depth} levels deep; the limit is {max_depth}"


class _SafeDocumentLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded, with plain keys given once.

    A key given twice is refused: the second would silently drop the first
    text. Keys must be plain values (text, numbers), not lists or mappings
    ("complex keys"), which no document here has and which crash code that
    expects keys it can hash and print. Nesting is bounded while the text is
    composed: PyYAML composes recursively, and 500 levels exhaust Python's
    stack.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise yaml.composer.ComposerError(
                None,
                None,
                nesting_message(),
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )

    def compose_sequence_node(self, anchor: Any) -> yaml.SequenceNode:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be plain text or a number, not a list or mapping",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str, source: str = "input") -> object:
    """Parse YAML or JSON (JSON is YAML); raise a one-line error on bad or excessive input."""
    try:
        data = yaml.load(text, Loader=_SafeDocumentLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML or JSON"
        raise DispatcherError(f"{source}: cannot read the settings{where}: {problem}") from None
    except RecursionError:
        # Not expected with the bound above; a one-line answer all the same.
        raise DispatcherError(f"{source}: cannot read the settings: {nesting_message()}") from None
    problem = structure_problem(data)
    if problem:
        raise DispatcherError(f"{source}: cannot read the settings: it {problem}")
    return data


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
            texts[(locale, section)] = overlay(earlier, part.subject, part.body, source)
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


def overlay(
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
