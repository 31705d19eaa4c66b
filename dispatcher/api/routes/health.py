"""Health, readiness, metrics and the OpenAPI document; no token for the first two."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from dispatcher.admin.status import readiness
from dispatcher.api import schemas
from dispatcher.api.routes.common import AnyToken, Reader, problems
from dispatcher.api.runtime import runtime_of
from dispatcher.errors import DispatcherError
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
