"""The FastAPI application: routes, error mapping, security headers, OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import RootModel
from pydantic.json_schema import models_json_schema
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.routing import Match

from config_store.database import get_engine
from config_store.document import SettingsDocument
from dispatcher.admin.pipeline import CeleryPipeline, Pipeline
from dispatcher.api import routes, schemas, ui
from dispatcher.api.auth import AuthProblem, SessionSigner
from dispatcher.api.config import ApiSettings
from dispatcher.api.runtime import Runtime
from dispatcher.domain.events import Event as AnyEvent
from dispatcher.errors import (
    BrokerUnavailable,
    DispatcherError,
    GroupExists,
    InvalidInput,
    NoSettings,
    SchemaNotReady,
    StoreUnavailable,
    UnknownGroup,
    UnknownVersion,
    VersionConflict,
)
from dispatcher.settings import Settings, get_settings
from dispatcher.smtp.mailbox import NoMailbox, UnknownMessage

DESCRIPTION = """\
Admin API of the portal e-mail dispatcher: customer groups, their versioned
"Portal e-mails" settings, previews, test sends, events, deliveries, dead
letters and the local mail sink's mailbox. Every endpoint except /healthz and
/readyz needs a bearer token (`dispatcher tokens create --scope
publish|read|admin --name NAME`): `publish` may only POST /v1/events, `read`
may read everything, `admin` may also change things. Validation errors answer
422 with every problem and its field path; nothing is saved or enqueued then.
"""

_STATUS: tuple[tuple[type[DispatcherError], int], ...] = (
    (UnknownGroup, 404),
    (NoSettings, 404),
    (UnknownVersion, 404),
    (NoMailbox, 404),
    (UnknownMessage, 404),
    (GroupExists, 409),
    (VersionConflict, 409),
    (BrokerUnavailable, 503),
    (StoreUnavailable, 503),
    (SchemaNotReady, 503),
)


def _status_of(exc: DispatcherError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] if parts[0] == "body" else parts[-1:]
    return ".".join(str(part) for part in parts)


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid_input(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidInput)
        detail = [{"path": e.path, "message": e.message} for e in exc.errors]
        return JSONResponse({"detail": detail}, status_code=422)

    async def dispatcher_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, DispatcherError)
        return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

    async def auth_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthProblem)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    async def request_invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = [_request_problem(error) for error in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    async def http_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not decode (not UTF-8, say).
            # Bodies the routes read themselves answer 422 then; so do these.
            detail = [{"path": "", "message": "the body is not UTF-8 JSON; send a JSON document"}]
            return JSONResponse({"detail": detail}, status_code=422)
        if exc.status_code == 405:
            # Starlette names only the methods of the first route on the path,
            # but GET and POST of one path are separate routes here.
            allowed = ", ".join(_allowed_methods(request))
            return JSONResponse(
                {"detail": f"{request.method} is not allowed here; use {allowed}"},
                status_code=405,
                headers={"Allow": allowed},
            )
        return await http_exception_handler(request, exc)

    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(DispatcherError, dispatcher_error)
    app.add_exception_handler(AuthProblem, auth_problem)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_problem)


def _request_problem(error: Any) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return {"path": "", "message": f"the body is not valid JSON ({reason}); send JSON"}
    message = str(error.get("msg", ""))
    if error.get("type") == "value_error":
        # Our own validators' messages; pydantic's prefix adds nothing.
        message = message.removeprefix("Value error, ")
    return {"path": _field_path(error.get("loc", ())), "message": message}


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path answers."""
    # The routers' own routes: the app may keep them wrapped, depending on
    # the FastAPI version, but these are what was declared.
    methods: set[str] = set()
    for route in [*routes.router.routes, *ui.router.routes]:
        match, _ = route.matches({**request.scope, "path_params": {}})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def add_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            # Answers carry personal data (addresses, texts); no cache keeps them.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class Event(RootModel[AnyEvent]):
    """One event (CONTRACT §2)."""


def _extra_schemas() -> dict[str, Any]:
    """Schemas of the models the API validates itself: the settings document and events.

    They are generated in one go so that pydantic gives models of the same
    name (the settings section and the event both called PasswordReset)
    distinct names instead of one silently replacing the other.
    """
    _, definitions = models_json_schema(
        [
            (SettingsDocument, "validation"),
            (Event, "validation"),
            (schemas.EffectiveSettings, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    return dict(definitions.get("$defs", {}))


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _extra_schemas().items():
                components.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    return build


def create_app(
    *,
    engine: Engine | None = None,
    config: Settings | None = None,
    api_settings: ApiSettings | None = None,
    pipeline: Pipeline | None = None,
) -> FastAPI:
    """The admin API and web UI; the defaults come from DISPATCHER_* variables."""
    config = config or get_settings()
    api_settings = api_settings or ApiSettings()
    owns_engine = engine is None

    def engine_factory() -> Engine:
        if engine is not None:
            return engine

        return get_engine(config.database_url)

    runtime = Runtime(
        engine_factory=engine_factory,
        config=config,
        api=api_settings,
        pipeline=pipeline or CeleryPipeline(config),
        signer=SessionSigner(api_settings.signing_key(), api_settings.session_hours * 3600),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            runtime.dispose()

    app = FastAPI(
        title="Portal e-mail dispatcher",
        version=version("portal-dispatcher"),
        description=DESCRIPTION,
        # The interactive docs load their scripts from a CDN; the UI ships
        # everything itself, and /openapi.json is served below with a token.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        separate_input_output_schemas=False,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    _install_error_handlers(app)
    _security_headers(app)
    if api_settings.origins:
        # Bearer tokens only: cookies never travel cross-origin.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api_settings.origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag"],
        )
    app.include_router(routes.router)
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC), name="static")
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
