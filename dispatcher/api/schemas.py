"""Request and response bodies of the admin API, as pydantic models for the OpenAPI document.

The settings document and the events keep their own models
(``config_store.document.SettingsDocument``, ``dispatcher.domain.events``); the API
validates those itself, with the product's own messages and field paths, and
only refers to their schemas here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema

from dispatcher.delivery.views import DeliveryView
from dispatcher.domain.fields import GROUP_CODE_PATTERN
from dispatcher.domain.kinds import KIND_BY_NAME, KIND_BY_SECTION

SETTINGS_DOCUMENT_REF = {"$ref": "#/components/schemas/SettingsDocument"}
EVENT_REF = {"$ref": "#/components/schemas/Event"}


def _utc(value: datetime) -> datetime:
    # SQLite returns the stored UTC times without their zone; say which it is.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Timestamp = Annotated[datetime, AfterValidator(_utc)]


# What the admin side accepts for an e-mail kind: its name or its settings
# section. The schema lists them; the admin side checks them itself, so that
# a typo gets the product's message with the valid names.
KIND_CHOICES: list[JsonValue] = [*KIND_BY_NAME, *KIND_BY_SECTION]
# Ids, version numbers and offsets are PostgreSQL integers; a larger number
# names nothing and would only make the database refuse the query.
MAX_INT = 2**31 - 1
RecordId = Annotated[int, Field(ge=1, le=MAX_INT)]


class _Request(BaseModel):
    # Strict: a body must have the types its schema says; false is no
    # delivery id and "3" no version number.
    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    """An error: one line that says what is wrong and how to fix it."""

    detail: str


class ResendRefused(BaseModel):
    """A resend was refused (409): ``detail`` for people, the rest as data."""

    detail: str
    code: Literal["address_suppressed", "not_finished"] = Field(
        description="address_suppressed: the recipient is on the suppression list (send again "
        'with "force": true to override); not_finished: the delivery is still under way.'
    )
    address: str | None = Field(default=None, description="The suppressed address.")
    since: Timestamp | None = Field(
        default=None, description="Since when the address is on the suppression list."
    )
    reason: str | None = Field(
        default=None,
        description="Why the address is on the suppression list, in the language asked for.",
    )


class FieldProblem(BaseModel):
    path: str = Field(description='Dotted path of the field, e.g. "password_reset.subject".')
    message: str


class ValidationProblem(BaseModel):
    """Every problem found, each with its field path; nothing was saved or enqueued."""

    detail: list[FieldProblem]


# Health ----------------------------------------------------------------------


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = Field(description='"ok" or "unavailable"')
    database: str | None = Field(
        default=None,
        description='"ok" or what is wrong with the database; only with a read token',
    )
    broker: str | None = Field(
        default=None,
        description='"ok" or what is wrong with the broker (Redis); only with a read token',
    )


# Groups ----------------------------------------------------------------------


class GroupCreate(_Request):
    # Documented here, checked by the admin side with the product's messages.
    code: str = Field(
        examples=["RETAIL"], json_schema_extra={"pattern": f"^{GROUP_CODE_PATTERN.pattern}$"}
    )
    name: str = Field(
        examples=["Retail customers"], json_schema_extra={"minLength": 1, "maxLength": 200}
    )


class Group(BaseModel):
    code: str
    name: str
    created_at: Timestamp
    current_version: int | None


class DeliveryPath(BaseModel):
    """Which relays a group's e-mails take (failover order) and whether they are signed."""

    sender_domain: str
    relays: list[str]
    dkim_selector: str | None = Field(description="The DKIM selector that signs; null: unsigned.")


class GroupDetail(Group):
    saved_by: str | None = None
    saved_at: Timestamp | None = None
    delivery_path: DeliveryPath | None = Field(
        default=None, description="Null while the group has no settings (no sender yet)."
    )


# Settings --------------------------------------------------------------------


class Change(BaseModel):
    path: str
    old: JsonValue = Field(description="The value before; null when the field was absent.")
    new: JsonValue = Field(description="The value after; null when the field was removed.")


class SaveResponse(BaseModel):
    group: str
    version: int
    created: bool = Field(description="false when the document equalled the current version")
    actor: str
    created_at: Timestamp
    restored_from: int | None
    changed_fields: list[str]
    changes: list[Change]


class VersionEntry(BaseModel):
    version: int
    actor: str
    created_at: Timestamp
    restored_from: int | None
    current: bool
    changed_fields: list[str]
    changes: list[Change] = Field(description="Differences to the version before this one.")


class RollbackRequest(_Request):
    version: RecordId


class Sourced(BaseModel):
    value: JsonValue
    source: str = Field(description='"group", "group translation (en)", "built-in (de)", ...')


class EffectiveAddresses(BaseModel):
    access_requests_to: Sourced
    send_from: Sourced


class EffectiveSection(BaseModel):
    send_to_customers_not_self_initiated: Sourced | None = None
    send_email: Sourced | None = None
    subject: Sourced
    body: Sourced
    language: str


class EffectiveSettings(BaseModel):
    """Every field's effective value for one locale, and where it comes from."""

    model_config = ConfigDict(populate_by_name=True)

    group: str
    version: int | None
    locale: str
    internal_addresses: EffectiveAddresses
    default_locale: Sourced
    access_request_internal: EffectiveSection = Field(alias="access_request.internal")
    customer_access_request: EffectiveSection
    new_validation: EffectiveSection
    notify_new_main_contact: EffectiveSection
    notify_old_main_contact: EffectiveSection
    forgotten_username: EffectiveSection
    password_reset: EffectiveSection


# A draft may be incomplete or wrong outside the previewed section (the form
# is being typed in); the preview sets those parts aside and says so.
DraftDocument = Annotated[
    dict[str, Any] | None,
    WithJsonSchema(
        {
            "anyOf": [{"type": "object"}, {"type": "null"}],
            "description": "An unsaved settings document (SettingsDocument), possibly "
            "incomplete; the saved one when left out.",
        }
    ),
]
RawEvent = Annotated[
    dict[str, Any] | None,
    WithJsonSchema(
        {
            "anyOf": [EVENT_REF, {"type": "null"}],
            "description": "An event to render with; sample data when left out.",
        }
    ),
]


class PreviewRequest(_Request):
    kind: str = Field(
        description="An e-mail kind (password.reset) or its settings section (password_reset).",
        json_schema_extra={"enum": KIND_CHOICES},
    )
    locale: str | None = Field(default=None, description="The recipient's locale, e.g. de-CH.")
    document: DraftDocument = None
    event: RawEvent = None


class PreviewSources(BaseModel):
    subject: str
    body: str


class PreviewResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: str
    to: str
    sender: str = Field(alias="from")
    language: str
    subject: str
    text: str
    html: str
    sources: PreviewSources
    source_labels: PreviewSources = Field(
        description="The sources for people, in the language of Accept-Language."
    )
    set_aside: list[FieldProblem] = Field(
        description="Problems elsewhere in the draft; the preview left those parts out."
    )


class SendTestRequest(_Request):
    kind: str = Field(
        description="An e-mail kind (password.reset) or its settings section (password_reset).",
        json_schema_extra={"enum": KIND_CHOICES},
    )
    address: str
    locale: str | None = None


class SendTestAccepted(BaseModel):
    event_id: str


# Events and deliveries ---------------------------------------------------------


class EventsAccepted(BaseModel):
    event_ids: list[str]


# A delivery as the API shows it: the record's own dataclass, so that its
# fields are defined once (``dispatcher.delivery.views``).
DeliveryOut = DeliveryView


class WebhookState(BaseModel):
    """How many webhooks of a delivery are pending, delivered and given up on."""

    pending: int = 0
    delivered: int = 0
    failed: int = 0


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")
    webhooks: dict[str, WebhookState] = Field(
        default_factory=dict,
        description="Per delivery id (as text), the state of its webhooks; absent: none.",
    )


class FailedEvent(BaseModel):
    event_id: str
    type: str
    group: str
    received_at: Timestamp
    reason: str | None


class RejectedMessage(BaseModel):
    id: int
    received_at: Timestamp
    event_id: str | None
    reason: str


class DeadLetters(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="Dead deliveries: replay by id.")
    events: list[FailedEvent] = Field(description="Events that could not be planned.")
    rejected: list[RejectedMessage] = Field(
        description="Messages that were not valid events; fix the publisher, nothing to replay."
    )


class ReplayRequest(_Request):
    ids: list[RecordId] = Field(default_factory=list, description="Dead delivery ids.")
    events: list[str] = Field(default_factory=list, description="Failed event ids.")
    all: bool = Field(default=False, description="Replay every dead letter; leave ids out.")


class ReplayResponse(BaseModel):
    deliveries: list[int]
    events: list[str]
    skipped_deliveries: list[int] = Field(description="Asked for, but not dead (left alone).")
    skipped_events: list[str] = Field(description="Asked for, but not failed (left alone).")


class AuditEntry(BaseModel):
    id: int
    created_at: Timestamp
    actor: str
    action: str
    target: str
    diff: JsonValue


# Mailbox (the local mail sink) ---------------------------------------------------


class MailSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file: str = Field(description="The message's file name; GET /v1/mailbox/{file} shows it.")
    received_at: Timestamp | None
    mail_from: str = Field(description="The envelope sender (MAIL FROM).")
    rcpt_tos: list[str] = Field(description="The envelope recipients (RCPT TO).")
    message_id: str | None
    subject: str
    sender: str = Field(alias="from", description="The From header.")
    to: str = Field(description="The To header.")


class MailboxPage(BaseModel):
    items: list[MailSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class MailHeaders(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str | None = Field(alias="from")
    to: str | None
    cc: str | None
    subject: str | None
    date: str | None
    message_id: str | None


class MailMessage(BaseModel):
    file: str
    received_at: Timestamp | None
    mail_from: str
    rcpt_tos: list[str]
    headers: MailHeaders
    text: str | None = Field(description="The text/plain part; null if there is none.")
    html: str | None = Field(
        description="The text/html part as the message carries it; null if there is none. "
        "Untrusted: show it only in a sandboxed frame."
    )


# Web UI session -----------------------------------------------------------------


class SignIn(_Request):
    token: str


class SessionInfo(BaseModel):
    name: str
    scope: str
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change.")


class Suppression(BaseModel):
    address: str
    reason: str
    since: Timestamp
    source_delivery_id: int | None
    created_by: str
    internal_for_groups: list[str] = Field(
        description="Groups whose access requests go to this address: staff would miss them."
    )


class SuppressionPage(BaseModel):
    items: list[Suppression]
    total: int
    limit: int
    offset: int


class SuppressionRequest(_Request):
    address: str = Field(max_length=320, examples=["gone@example.com"])
    reason: str = Field(max_length=1000, examples=["asked to receive no e-mail"])


class ResendRequest(_Request):
    force: bool = Field(
        default=False, description="Send even to an address on the suppression list."
    )


class Webhook(BaseModel):
    id: int
    webhook_id: str
    type: str
    endpoint: str
    delivery_id: int | None
    status: str
    attempts: int
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None
    last_error: str | None


class WebhookReplayRequest(_Request):
    ids: list[RecordId] = Field(default_factory=list, description="Failed webhook ids.")
    all: bool = Field(default=False, description="Replay every failed webhook; leave ids out.")


class WebhookReplayResponse(BaseModel):
    replayed: list[int]


class RelayOut(BaseModel):
    name: str
    host: str
    port: int
    security: str
    authenticates: bool
    breaker: str = Field(description="closed (in use), open (skipped), half-open (probing)")


class RouteOut(BaseModel):
    match: str = Field(description='"sender domain example.com" or "group RETAIL"')
    relays: list[str]
    sender_domain: str | None = Field(default=None, description="The sender domain it matches.")
    group: str | None = Field(default=None, description="The customer group it matches.")
    label: str = Field(description="What it matches, in the language of Accept-Language.")


class Relays(BaseModel):
    from_file: bool = Field(description="False: one relay from DISPATCHER_SMTP_* for everything.")
    relays: list[RelayOut]
    routes: list[RouteOut]
    default: list[str]


class RelayCheckRequest(_Request):
    """Nothing to choose yet: the check is the one the workers' connection goes through."""


class RelayCheck(BaseModel):
    relay: str
    ok: bool
    steps: list[str] = Field(
        description="What succeeded, in order, in the language of Accept-Language."
    )
    problem: str | None = Field(description="What failed, in the language of Accept-Language.")
    milliseconds: int
