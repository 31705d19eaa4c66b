"""The five event types of CONTRACT §2, parsed strictly into immutable models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from dispatcher.domain.fields import (
    EmailAddress,
    GroupCode,
    HttpUrl,
    Identifier,
    LocaleTag,
    ShortText,
    Timestamp,
)
from dispatcher.domain.kinds import EventType, Kind
from dispatcher.domain.modelerrors import field_errors, suggest
from dispatcher.errors import FieldError, InvalidEvent


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Contact(_Model):
    email: EmailAddress
    name: ShortText | None = None
    locale: LocaleTag | None = None


class Customer(_Model):
    id: Identifier
    name: ShortText | None = None


class EventBase(_Model):
    event_id: Identifier
    type: str
    customer_group: GroupCode
    occurred_at: Timestamp | None = None


class AccessRequested(EventBase):
    type: Literal["access.requested"]
    customer: Customer
    contact: Contact
    self_initiated: bool
    requested_by: Contact | None = None
    portal_url: HttpUrl | None = None


class CustomerValidated(EventBase):
    type: Literal["customer.validated"]
    customer: Customer
    contact: Contact
    portal_url: HttpUrl | None = None


class MainContactChanged(EventBase):
    type: Literal["main_contact.changed"]
    customer: Customer
    new_contact: Contact
    old_contact: Contact


class UsernameForgotten(EventBase):
    type: Literal["username.forgotten"]
    contact: Contact
    username: ShortText


class PasswordReset(EventBase):
    type: Literal["password.reset"]
    contact: Contact
    reset_url: HttpUrl
    expires_at: Timestamp | None = None
    username: ShortText | None = None


Event = AccessRequested | CustomerValidated | MainContactChanged | UsernameForgotten | PasswordReset

EVENT_MODELS: Mapping[EventType, type[EventBase]] = MappingProxyType(
    {
        EventType.ACCESS_REQUESTED: AccessRequested,
        EventType.CUSTOMER_VALIDATED: CustomerValidated,
        EventType.MAIN_CONTACT_CHANGED: MainContactChanged,
        EventType.USERNAME_FORGOTTEN: UsernameForgotten,
        EventType.PASSWORD_RESET: PasswordReset,
    }
)


def parse_event(raw: object) -> Event:
    """Validate one raw event (a decoded JSON object); raise ``InvalidEvent``."""
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else type(raw).__name__
        raise InvalidEvent([FieldError("", f"an event must be a JSON object, not {kind}")])
    event_id = raw.get("event_id")
    subject = f"{event_id[:60]!r}" if isinstance(event_id, str) and event_id else ""
    type_name = raw.get("type")
    types = [member.value for member in EventType]
    if type_name not in types:
        if type_name is None:
            message = f"is required; use one of {', '.join(types)}"
        else:
            hint = suggest(str(type_name), types) or f"; use one of {', '.join(types)}"
            message = f"unknown event type {str(type_name)[:60]!r}{hint}"
        raise InvalidEvent([FieldError("type", message)], subject)
    model = EVENT_MODELS[EventType(type_name)]
    try:
        event = model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(field_errors(model, exc, root_label="the event"), subject) from None
    return event  # type: ignore[return-value]


def recipient_of(event: EventBase, kind: Kind) -> Contact | None:
    """The contact a kind of e-mail goes to, or None for the internal address."""
    if kind.recipient_field is None:
        return None
    contact = getattr(event, kind.recipient_field)
    assert isinstance(contact, Contact)
    return contact


@dataclass(frozen=True)
class Variable:
    """What a template may use: a value, optionally with named parts."""

    optional: bool
    fields: Mapping[str, Variable] | None = None


def _variables_of(model: type[BaseModel]) -> dict[str, Variable]:
    result: dict[str, Variable] = {}
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        optional = False
        if get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation):
            optional = True
            annotation = next(arg for arg in get_args(annotation) if arg is not NoneType)
        nested = (
            _variables_of(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        result[name] = Variable(optional, MappingProxyType(nested) if nested else None)
    return result


_CONTACT = Variable(False, MappingProxyType(_variables_of(Contact)))
_GROUP = Variable(False, MappingProxyType({"code": Variable(False), "name": Variable(False)}))


def template_variables(event_type: EventType) -> Mapping[str, Variable]:
    """Every name a template for this event type may use (CONTRACT §2)."""
    names = _variables_of(EVENT_MODELS[event_type])
    names["group"] = _GROUP
    names["recipient"] = _CONTACT
    return MappingProxyType(names)


def template_context(
    event: EventBase, recipient: Contact, group_code: str, group_name: str
) -> dict[str, Any]:
    """The values a template sees: every declared field, absent optional ones as None."""
    context: dict[str, Any] = event.model_dump(mode="json")
    context["group"] = {"code": group_code, "name": group_name}
    context["recipient"] = recipient.model_dump(mode="json")
    return context


def validate_all(events: Iterable[object], labels: Iterable[str] | None = None) -> list[Event]:
    """Parse every event; raise one ``InvalidEvent`` listing all problems, by position."""
    parsed: list[Event] = []
    errors: list[FieldError] = []
    names = iter(labels) if labels is not None else None
    for index, raw in enumerate(events):
        label = next(names) if names is not None else f"[{index}]"
        try:
            parsed.append(parse_event(raw))
        except InvalidEvent as exc:
            errors.extend(
                FieldError(f"{label}.{e.path}" if e.path else label, e.message) for e in exc.errors
            )
    if errors:
        raise InvalidEvent(errors)
    return parsed
