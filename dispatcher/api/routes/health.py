"""Health, readiness, metrics and the OpenAPI document; no token for the first two."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from dispatcher.admin.access import READ
from dispatcher.admin.status import readiness
from dispatcher.api import schemas
from dispatcher.api.auth import SESSION_COOKIE, AuthProblem
from dispatcher.api.routes.common import AnyToken, Reader, language_of, problems
from dispatcher.api.runtime import requires, runtime_of
from dispatcher.errors import DispatcherError
from dispatcher.i18n import translate
from dispatcher.ops.metrics import exposition

router = APIRouter()


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
    """Whether the database (with this version's schema) and the broker answer.

    No token needed for "ok" or "unavailable"; what is wrong (which may name
    hosts) only for a caller with a read token, in the language of
    Accept-Language.
    """
    runtime = runtime_of(request)
    try:
        engine = runtime.engine()
    except DispatcherError as exc:
        database, broker = str(exc), runtime.pipeline.broker_problem() or "ok"
    else:
        result = readiness(engine, runtime.pipeline)
        database, broker = result.database, result.broker
    ready = database == "ok" and broker == "ok"
    if not ready:
        response.status_code = 503
    status = "ok" if ready else "unavailable"
    if not _may_read(request):
        return schemas.Readiness(status=status)
    language = language_of(request)
    return schemas.Readiness(
        status=status,
        database=database if database == "ok" else translate(database, language),
        broker=broker if broker == "ok" else translate(broker, language),
    )


def _may_read(request: Request) -> bool:
    """Whether the caller sent a token (or a session) with the read scope; never raises."""
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        return False
    try:
        requires(READ)(request, None, None)
    except (AuthProblem, DispatcherError):
        return False
    return True


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
def metrics(request: Request, _: Reader) -> Response:
    """Prometheus metrics (a token with the read scope)."""
    body, content_type = exposition(runtime_of(request).state())
    return Response(body, media_type=content_type)


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
