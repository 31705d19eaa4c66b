"""A group's settings: read, save, history, rollback, preview and test send."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from config_store.document import dump
from config_store.repository import SaveResult
from dispatcher.admin.changes import Change
from dispatcher.admin.use_cases import InvalidRequest, SaveOutcome
from dispatcher.api import schemas
from dispatcher.api.routes.common import (
    AUTH,
    MAX_INT,
    Administrator,
    GroupCode,
    Offset,
    Reader,
    language_of,
    problems,
    read_body,
)
from dispatcher.api.runtime import runtime_of
from dispatcher.domain.group_settings import effective_view
from dispatcher.domain.locales import locale_problem
from dispatcher.errors import FieldError, NoSettings
from dispatcher.i18n import source_label, translate

router = APIRouter()


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
    raw = await read_body(request, yaml_allowed=True)
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
    language = language_of(request)
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
        source_labels=schemas.PreviewSources(
            subject=source_label(result.text.subject_source, language),
            body=source_label(result.text.body_source, language),
        ),
        set_aside=[
            schemas.FieldProblem(path=e.path, message=translate(e.message, language))
            for e in outcome.set_aside
        ],
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
