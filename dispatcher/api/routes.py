"""The HTTP API of CONTRACT §6: decode the request, call the admin side, encode the answer."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from config_store.document import dump, load
from config_store.repository import GroupInfo, SaveResult
from dispatcher.admin.access import ADMIN, PUBLISH, READ
from dispatcher.admin.use_cases import Change, InvalidRequest, SaveOutcome, readiness
from dispatcher.api import schemas
from dispatcher.api.auth import Principal
from dispatcher.api.runtime import requires, runtime_of
from dispatcher.delivery.record import DEAD, STATUSES, DeliveryFilter, DeliveryView
from dispatcher.domain.fields import GROUP_CODE_PATTERN, check_group_code
from dispatcher.domain.group_settings import effective_view
from dispatcher.domain.kinds import lookup_kind
from dispatcher.domain.locales import locale_problem
from dispatcher.errors import DispatcherError, FieldError, NoSettings
from dispatcher.smtp.mailbox import FILE_NAME, MailSummary, list_messages, read_message

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_INT = schemas.MAX_INT

Reader = Annotated[Principal, Depends(requires(READ))]
Administrator = Annotated[Principal, Depends(requires(ADMIN))]
Publisher = Annotated[Principal, Depends(requires(PUBLISH))]
AnyToken = Annotated[Principal, Depends(requires(None))]


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers a route can give."""
    described: dict[int, tuple[type[Any], str]] = {
        401: (schemas.Problem, "No token, or one that is not valid or was revoked."),
        403: (schemas.Problem, "The token's scope does not allow this (or a CSRF check failed)."),
        404: (schemas.Problem, "No such group, settings or version."),
        409: (schemas.Problem, "Conflicts with the current state; the message says what to do."),
        422: (schemas.ValidationProblem, "Every problem with its field path; nothing changed."),
        503: (schemas.Problem, "The database or the broker is unavailable; try again later."),
    }
    return {
        code: {"model": described[code][0], "description": described[code][1]} for code in codes
    }


AUTH = (401, 403, 422)
router = APIRouter()


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, so no stored value has one; refusing it
    # here keeps the database from failing on the query instead.
    if value is not None and "\x00" in value:
        raise ValueError("contains a NUL character (U+0000); remove it")
    return value


# The path's group code, checked before it reaches the database: a code that
# cannot exist answers 422 with the rule, one that does not exist 404.
GroupCode = Annotated[
    str,
    Path(
        description="The customer group's code.",
        examples=["RETAIL"],
        json_schema_extra={"pattern": f"^{GROUP_CODE_PATTERN.pattern}$"},
    ),
    AfterValidator(check_group_code),
]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]


# Health ------------------------------------------------------------------------


@router.get("/healthz", tags=["health"], response_model=schemas.Health)
def healthz() -> schemas.Health:
    """The process is alive (no token needed; nothing else is checked)."""
    return schemas.Health()


@router.get(
    "/readyz",
    tags=["health"],
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness, "description": "Something is unreachable."}},
)
def readyz(request: Request, response: Response) -> schemas.Readiness:
    """Whether the database (with this version's schema) and the broker answer (no token)."""
    runtime = runtime_of(request)
    try:
        engine = runtime.engine()
    except DispatcherError as exc:
        state = schemas.Readiness(
            status="unavailable",
            database=str(exc),
            broker=runtime.pipeline.broker_problem() or "ok",
        )
        response.status_code = 503
        return state
    result = readiness(engine, runtime.pipeline)
    if not result.ready:
        response.status_code = 503
    return schemas.Readiness(
        status="ok" if result.ready else "unavailable",
        database=result.database,
        broker=result.broker,
    )


@router.get(
    "/metrics",
    tags=["health"],
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        },
        **problems(401, 403),
    },
)
def metrics(_: Reader) -> Response:
    """Prometheus metrics (a token with the read scope)."""
    from dispatcher.ops.metrics import exposition

    body, content_type = exposition()
    return Response(body, media_type=content_type)


# Groups ------------------------------------------------------------------------


def _group(info: GroupInfo) -> schemas.Group:
    return schemas.Group(
        code=info.code,
        name=info.name,
        created_at=info.created_at,
        current_version=info.current_version,
    )


@router.get(
    "/v1/groups", tags=["groups"], response_model=list[schemas.Group], responses=problems(*AUTH)
)
def list_groups(request: Request, _: Reader) -> list[schemas.Group]:
    """The customer groups set up for the portal."""
    return [_group(g) for g in runtime_of(request).admin().settings.list_groups()]


@router.post(
    "/v1/groups",
    tags=["groups"],
    status_code=201,
    response_model=schemas.Group,
    responses=problems(*AUTH, 409),
)
def add_group(
    request: Request, body: schemas.GroupCreate, principal: Administrator
) -> schemas.Group:
    """Set a customer group up for the portal."""
    info = runtime_of(request).admin().add_group(principal.name, body.code, body.name)
    return _group(info)


@router.get(
    "/v1/groups/{code}",
    tags=["groups"],
    response_model=schemas.GroupDetail,
    responses=problems(*AUTH, 404),
)
def get_group(request: Request, code: GroupCode, _: Reader) -> schemas.GroupDetail:
    """One customer group, with who saved its current settings and when."""
    details = runtime_of(request).admin().group(code)
    return schemas.GroupDetail(
        **_group(details.group).model_dump(), saved_by=details.saved_by, saved_at=details.saved_at
    )


# Settings ----------------------------------------------------------------------


def _etag(version: int | None) -> dict[str, str]:
    return {"ETag": f'"{version}"'} if version is not None else {}


def _document_response(data: Any, fmt: str, version: int | None) -> Response:
    headers = _etag(version)
    if fmt == "yaml":
        return PlainTextResponse(dump(data, "yaml"), media_type="application/yaml", headers=headers)
    return JSONResponse(data, headers=headers)


_SETTINGS_OR_EFFECTIVE = {
    "oneOf": [schemas.SETTINGS_DOCUMENT_REF, {"$ref": "#/components/schemas/EffectiveSettings"}]
}


@router.get(
    "/v1/groups/{code}/settings",
    tags=["settings"],
    responses={
        200: {
            "description": "The settings document (or, with effective=true, the effective view). "
            'The ETag header holds the version, e.g. "3", for If-Match on PUT.',
            # A schema describes the data; YAML is only another way to write it.
            "content": {
                "application/json": {"schema": _SETTINGS_OR_EFFECTIVE},
                "application/yaml": {"schema": _SETTINGS_OR_EFFECTIVE},
            },
        },
        **problems(*AUTH, 404),
    },
)
def get_settings(
    request: Request,
    code: GroupCode,
    _: Reader,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT, description="A saved version.")] = None,
    effective: Annotated[
        bool, Query(description="Every field's effective value and its source.")
    ] = False,
    locale: Annotated[str | None, Query(description="With effective: the locale.")] = None,
    fmt: Annotated[Literal["json", "yaml"], Query(alias="format")] = "json",
) -> Response:
    """The current settings document, version N, or the effective settings."""
    admin = runtime_of(request).admin()
    if effective:
        errors = []
        if version is not None:
            errors.append(
                FieldError("version", "effective shows the current version; leave it out")
            )
        if locale is not None and locale_problem(locale):
            errors.append(FieldError("locale", locale_problem(locale) or ""))
        if errors:
            raise InvalidRequest(errors)
        view = effective_view(admin.settings.snapshot(code), locale)
        return _document_response(view, fmt, view["version"])
    if locale is not None:
        raise InvalidRequest([FieldError("locale", "only works with effective=true")])
    number = version or admin.settings.get_group(code).current_version
    if number is None:
        raise NoSettings(code)
    return _document_response(admin.settings.document(code, number), fmt, number)


_IF_MATCH = re.compile(r'(?:W/)?"?(\d{1,9})"?')


def _expected_version(if_match: str | None, expected: int | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return expected
    found = _IF_MATCH.fullmatch(if_match.strip())
    if found is None:
        raise InvalidRequest(
            [FieldError("If-Match", 'must be the ETag of the version you edited, e.g. "3"')]
        )
    number = int(found.group(1))
    if expected is not None and expected != number:
        raise InvalidRequest(
            [FieldError("expected_version", "differs from If-Match; send only one of them")]
        )
    return number


def _json_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice would silently drop the first text; refuse it, as the
    # YAML reader of the command line does.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice; keep one")
        result[key] = value
    return result


async def _read_body(request: Request, *, yaml_allowed: bool = False) -> object:
    """The request's JSON (or YAML) body; raise ``InvalidRequest`` with a one-line reason."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise InvalidRequest([FieldError("", f"the body is larger than {MAX_BODY_BYTES} bytes")])
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest([FieldError("", f"the body is larger than {MAX_BODY_BYTES} bytes")])
    if not raw.strip():
        raise InvalidRequest([FieldError("", "the body is empty; send a JSON document")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest([FieldError("", "the body is not UTF-8 text; send UTF-8")]) from None
    content_type = request.headers.get("content-type", "")
    if yaml_allowed and "yaml" in content_type:
        try:
            return load(text, "the request body")
        except DispatcherError as exc:
            raise InvalidRequest([FieldError("", str(exc))]) from None
    try:
        return json.loads(text, object_pairs_hook=_json_object_pairs)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            [
                FieldError(
                    "",
                    f"the body is not valid JSON at line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}",
                )
            ]
        ) from None
    except ValueError as exc:
        raise InvalidRequest([FieldError("", str(exc))]) from None


def _changes(changes: tuple[Change, ...]) -> list[schemas.Change]:
    return [schemas.Change(path=c.path, old=c.old, new=c.new) for c in changes]


def _saved(code: str, outcome: SaveOutcome) -> schemas.SaveResponse:
    result: SaveResult = outcome.result
    version = result.version
    return schemas.SaveResponse(
        group=code,
        version=version.number,
        created=result.created,
        actor=version.actor,
        created_at=version.created_at,
        restored_from=version.restored_from,
        changed_fields=list(version.changed_fields) if result.created else [],
        changes=_changes(outcome.changes),
    )


@router.put(
    "/v1/groups/{code}/settings",
    tags=["settings"],
    response_model=schemas.SaveResponse,
    responses=problems(*AUTH, 404, 409),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The whole settings document (CONTRACT §1), as JSON or YAML.",
            "content": {
                "application/json": {"schema": schemas.SETTINGS_DOCUMENT_REF},
                "application/yaml": {"schema": schemas.SETTINGS_DOCUMENT_REF},
            },
        }
    },
)
async def put_settings(
    request: Request,
    response: Response,
    code: GroupCode,
    principal: Administrator,
    if_match: Annotated[
        str | None, Header(description='The ETag you edited, e.g. "3"; 409 if it changed.')
    ] = None,
    expected_version: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Like If-Match, as a query parameter.")
    ] = None,
) -> schemas.SaveResponse:
    """Validate the whole document and save it as a new version (all or nothing)."""
    expected = _expected_version(if_match, expected_version)
    raw = await _read_body(request, yaml_allowed=True)
    admin = runtime_of(request).admin()
    outcome = await run_in_threadpool(admin.save_settings, principal.name, code, raw, expected)
    response.headers.update(_etag(outcome.result.version.number))
    return _saved(code, outcome)


@router.get(
    "/v1/groups/{code}/settings/history",
    tags=["settings"],
    response_model=list[schemas.VersionEntry],
    responses=problems(*AUTH, 404),
)
def settings_history(
    request: Request,
    code: GroupCode,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[schemas.VersionEntry]:
    """Saved versions, newest first, each with its changes against the version before."""
    entries = runtime_of(request).admin().history(code, limit, offset)
    return [
        schemas.VersionEntry(
            version=entry.version.number,
            actor=entry.version.actor,
            created_at=entry.version.created_at,
            restored_from=entry.version.restored_from,
            current=entry.version.is_current,
            changed_fields=list(entry.version.changed_fields),
            changes=_changes(entry.changes),
        )
        for entry in entries
    ]


@router.post(
    "/v1/groups/{code}/settings/rollback",
    tags=["settings"],
    response_model=schemas.SaveResponse,
    responses=problems(*AUTH, 404),
)
def rollback(
    request: Request,
    response: Response,
    code: GroupCode,
    body: schemas.RollbackRequest,
    principal: Administrator,
) -> schemas.SaveResponse:
    """Save a new version whose content equals version N."""
    outcome = runtime_of(request).admin().rollback(principal.name, code, body.version)
    response.headers.update(_etag(outcome.result.version.number))
    return _saved(code, outcome)


@router.post(
    "/v1/groups/{code}/preview",
    tags=["settings"],
    response_model=schemas.PreviewResponse,
    response_model_by_alias=True,
    responses=problems(*AUTH, 404),
)
def preview(
    request: Request, code: GroupCode, body: schemas.PreviewRequest, _: Reader
) -> schemas.PreviewResponse:
    """Render one e-mail (subject, text, HTML) of the saved settings or of an unsaved draft."""
    outcome = (
        runtime_of(request).admin().preview(code, body.kind, body.locale, body.document, body.event)
    )
    result = outcome.preview
    return schemas.PreviewResponse(
        kind=result.kind,
        to=result.to,
        sender=result.sender,
        language=result.text.locale,
        subject=result.email.subject,
        text=result.email.text,
        html=result.email.html,
        sources=schemas.PreviewSources(
            subject=result.text.subject_source, body=result.text.body_source
        ),
        set_aside=[schemas.FieldProblem(path=e.path, message=e.message) for e in outcome.set_aside],
    )


@router.post(
    "/v1/groups/{code}/test-send",
    tags=["settings"],
    status_code=202,
    response_model=schemas.SendTestAccepted,
    responses=problems(*AUTH, 404, 503),
)
def test_send(
    request: Request, code: GroupCode, body: schemas.SendTestRequest, principal: Administrator
) -> schemas.SendTestAccepted:
    """Send one e-mail kind with sample data to an address, through the real pipeline."""
    event_id = (
        runtime_of(request)
        .admin()
        .test_send(principal.name, code, body.kind, body.address, body.locale)
    )
    return schemas.SendTestAccepted(event_id=event_id)


# Events, deliveries, dead letters -------------------------------------------------


@router.post(
    "/v1/events",
    tags=["events"],
    status_code=202,
    response_model=schemas.EventsAccepted,
    responses=problems(*AUTH, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One event or a list of events (CONTRACT §2); all are validated "
            "before any is enqueued.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            schemas.EVENT_REF,
                            {"type": "array", "items": schemas.EVENT_REF},
                        ]
                    }
                }
            },
        }
    },
)
async def publish_events(request: Request, _: Publisher) -> schemas.EventsAccepted:
    """Validate one event or a list, then enqueue them all; 202 with their ids."""
    body = await _read_body(request)
    admin = runtime_of(request).admin()
    return schemas.EventsAccepted(event_ids=await run_in_threadpool(admin.publish, body))


def _delivery(d: DeliveryView) -> schemas.DeliveryOut:
    return schemas.DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        group=d.group_code,
        kind=d.kind,
        recipient=d.recipient,
        recipient_name=d.recipient_name,
        recipient_locale=d.recipient_locale,
        lane=d.lane,
        status=d.status,
        attempts=d.attempts,
        last_code=d.last_code,
        last_text=d.last_text,
        message_id=d.message_id,
        settings_version=d.settings_version,
        created_at=d.created_at,
        updated_at=d.updated_at,
        next_attempt_at=d.next_attempt_at,
        sent_at=d.sent_at,
        uncertain=d.uncertain,
        test=d.test,
    )


@router.get(
    "/v1/deliveries",
    tags=["deliveries"],
    response_model=schemas.DeliveryPage,
    responses=problems(*AUTH),
)
def deliveries(
    request: Request,
    _: Reader,
    event_id: Annotated[str | None, AfterValidator(_no_nul)] = None,
    group: Annotated[str | None, AfterValidator(_no_nul)] = None,
    status: Annotated[
        str | None, Query(description=", ".join(STATUSES), json_schema_extra={"enum": STATUSES})
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            description="An e-mail kind or its settings section.",
            json_schema_extra={"enum": schemas.KIND_CHOICES},
        ),
    ] = None,
    recipient: Annotated[str | None, AfterValidator(_no_nul)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> schemas.DeliveryPage:
    """Deliveries, newest first, filtered and paged."""
    errors: list[FieldError] = []
    if status is not None and status not in STATUSES:
        errors.append(FieldError("status", f"use one of: {', '.join(STATUSES)}"))
    if kind is not None:
        try:
            kind = lookup_kind(kind).name
        except DispatcherError as exc:
            errors.append(FieldError("kind", str(exc)))
    if errors:
        raise InvalidRequest(errors)
    rows = (
        runtime_of(request)
        .admin()
        .records.deliveries(
            DeliveryFilter(event_id, group, status, kind, recipient, limit=limit + 1, offset=offset)
        )
    )
    more = len(rows) > limit
    return schemas.DeliveryPage(
        items=[_delivery(d) for d in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/v1/dead-letters",
    tags=["deliveries"],
    response_model=schemas.DeadLetters,
    responses=problems(*AUTH),
)
def dead_letters(
    request: Request, _: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> schemas.DeadLetters:
    """Dead deliveries and failed events (both replayable), and rejected messages."""
    records = runtime_of(request).admin().records
    return schemas.DeadLetters(
        deliveries=[
            _delivery(d) for d in records.deliveries(DeliveryFilter(status=DEAD, limit=limit))
        ],
        events=[
            schemas.FailedEvent(
                event_id=e.event_id,
                type=e.type,
                group=e.customer_group,
                received_at=e.received_at,
                reason=e.reason,
            )
            for e in records.failed_events(limit=limit)
        ],
        rejected=[
            schemas.RejectedMessage(
                id=r.id, received_at=r.received_at, event_id=r.event_id, reason=r.reason
            )
            for r in records.rejected(limit=limit)
        ],
    )


@router.post(
    "/v1/dead-letters/replay",
    tags=["deliveries"],
    status_code=202,
    response_model=schemas.ReplayResponse,
    responses=problems(*AUTH, 503),
)
def replay(
    request: Request, body: schemas.ReplayRequest, principal: Administrator
) -> schemas.ReplayResponse:
    """Send dead deliveries again and re-plan failed events: by id, or all of them."""
    if body.all and (body.ids or body.events):
        raise InvalidRequest([FieldError("all", "give either all: true or ids/events, not both")])
    if not (body.all or body.ids or body.events):
        raise InvalidRequest(
            [FieldError("", "give delivery ids, event ids, or all: true; nothing was replayed")]
        )
    report = (
        runtime_of(request)
        .admin()
        .replay(principal.name, deliveries=body.ids, events=body.events, everything=body.all)
    )
    return schemas.ReplayResponse(
        deliveries=list(report.deliveries),
        events=list(report.events),
        skipped_deliveries=list(report.skipped_deliveries),
        skipped_events=list(report.skipped_events),
    )


@router.get(
    "/v1/audit",
    tags=["audit"],
    response_model=list[schemas.AuditEntry],
    responses=problems(*AUTH),
)
def audit(
    request: Request,
    _: Reader,
    target: Annotated[
        str | None,
        Query(description="A group code, 'dead-letters', ..."),
        AfterValidator(_no_nul),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[schemas.AuditEntry]:
    """Every change made through the API, the web UI and the token commands, newest first."""
    rows = runtime_of(request).admin().access.audit(target, limit, offset)
    return [
        schemas.AuditEntry(
            id=r.id,
            created_at=r.created_at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            diff=r.diff,
        )
        for r in rows
    ]


# Mailbox ---------------------------------------------------------------------------

NO_MAILBOX: dict[int | str, dict[str, Any]] = {
    404: {
        "model": schemas.Problem,
        "description": "No local mail sink here (DISPATCHER_MAILSINK_DIR is unset), "
        "or no such message.",
    }
}


def _mail_summary(summary: MailSummary) -> schemas.MailSummary:
    return schemas.MailSummary(
        file=summary.file,
        received_at=summary.received_at,
        mail_from=summary.mail_from,
        rcpt_tos=list(summary.rcpt_tos),
        message_id=summary.message_id,
        subject=summary.subject,
        sender=summary.sender,
        to=summary.to,
    )


@router.get(
    "/v1/mailbox",
    tags=["mailbox"],
    response_model=schemas.MailboxPage,
    responses={**problems(*AUTH), **NO_MAILBOX},
)
def mailbox(
    request: Request,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> schemas.MailboxPage:
    """The messages the local mail sink of `dispatcher up` kept, newest first."""
    page = list_messages(runtime_of(request).config.mailsink_dir, limit, offset)
    return schemas.MailboxPage(
        items=[_mail_summary(item) for item in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if offset + limit < page.total else None,
    )


@router.get(
    "/v1/mailbox/{file}",
    tags=["mailbox"],
    response_model=schemas.MailMessage,
    responses={**problems(*AUTH), **NO_MAILBOX},
)
def mail_message(
    request: Request,
    file: Annotated[
        str,
        Path(
            pattern=f"^{FILE_NAME.pattern}$",
            description="A file name from GET /v1/mailbox; no other name is ever opened.",
        ),
    ],
    _: Reader,
) -> schemas.MailMessage:
    """One message of the local mail sink: its headers, its text part and its HTML part."""
    message = read_message(runtime_of(request).config.mailsink_dir, file)
    summary = message.summary
    return schemas.MailMessage(
        file=summary.file,
        received_at=summary.received_at,
        mail_from=summary.mail_from,
        rcpt_tos=list(summary.rcpt_tos),
        headers=schemas.MailHeaders(
            sender=message.sender,
            to=message.to,
            cc=message.cc,
            subject=message.subject,
            date=message.date,
            message_id=message.message_id,
        ),
        text=message.text,
        html=message.html,
    )


@router.get(
    "/openapi.json",
    tags=["health"],
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "This document (OpenAPI 3).",
        },
        **problems(401),
    },
)
def openapi_document(request: Request, _: AnyToken) -> JSONResponse:
    """The OpenAPI document of this API (any valid token)."""
    return JSONResponse(request.app.openapi())
