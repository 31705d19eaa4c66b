"""The FastAPI application: routes, error mapping, security headers, OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi import HTTPException as DetailedHTTPException
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import RootModel
from pydantic.json_schema import models_json_schema
from sqlalchemy import Engine
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config_store.database import get_engine
from config_store.document import MAX_VALUES, SettingsDocument, nesting_message, structure_problem
from dispatcher.admin.pipeline import CeleryPipeline, Pipeline
from dispatcher.admin.relays import UnknownRelay
from dispatcher.api import routes, schemas, ui
from dispatcher.api.auth import AuthProblem, SessionSigner
from dispatcher.api.config import ApiSettings
from dispatcher.api.routes.common import MAX_BODY_BYTES, language_of
from dispatcher.api.runtime import Runtime
from dispatcher.delivery.suppressions import NotSuppressed
from dispatcher.domain.events import Event as AnyEvent
from dispatcher.errors import (
    AddressSuppressed,
    BrokerUnavailable,
    CannotResend,
    DispatcherError,
    GroupExists,
    InvalidInput,
    NoSettings,
    SchemaNotReady,
    StoreUnavailable,
    UnknownDelivery,
    UnknownGroup,
    UnknownVersion,
    VersionConflict,
)
from dispatcher.i18n import translate, translate_record
from dispatcher.ops import tracing
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
    (UnknownDelivery, 404),
    (UnknownRelay, 404),
    (NotSuppressed, 404),
    (GroupExists, 409),
    (VersionConflict, 409),
    (CannotResend, 409),
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


# An answer names at most this many problems, each shortened: a body with
# 400,000 unknown keys gets 50 of them and a count, not a 25 MB echo.
MAX_PROBLEMS = 50
MAX_PATH_CHARS = 200
MAX_MESSAGE_CHARS = 500


def _clip(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters and safe to encode as UTF-8.

    Paths and messages can hold what a client sent (an unknown key); a lone
    surrogate in one would make the JSON answer itself fail.
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem_list(
    problems: Sequence[tuple[str, str]], total: int | None = None, language: str = "en"
) -> list[dict[str, str]]:
    """The ``detail`` of a 422: the first ``MAX_PROBLEMS`` problems, then how many more.

    ``total`` counts every problem when only the first few were converted.
    Messages are translated into ``language`` (``dispatcher.i18n``); paths
    name fields and stay as they are.
    """
    shown = [
        {
            "path": _clip(path, MAX_PATH_CHARS),
            "message": _clip(translate(message, language), MAX_MESSAGE_CHARS),
        }
        for path, message in problems[:MAX_PROBLEMS]
    ]
    more = (len(problems) if total is None else total) - len(shown)
    if more > 0:
        message = f"and {more} more problems not listed; fix these first"
        shown.append({"path": "", "message": translate(message, language)})
    return shown


def _translated_detail(detail: Any, language: str) -> Any:
    """An HTTPException's detail (a text or a problem list) in ``language``."""
    if isinstance(detail, str):
        return translate(detail, language)
    if isinstance(detail, list) and all(
        isinstance(item, dict) and isinstance(item.get("message"), str) for item in detail
    ):
        return [{**item, "message": translate(item["message"], language)} for item in detail]
    return detail


def _install_error_handlers(app: FastAPI) -> None:
    # Every answer's text is in the language the request asked for
    # (Accept-Language; English by default): dispatcher.i18n.
    async def invalid_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidInput)
        first = [(e.path, e.message) for e in exc.errors[:MAX_PROBLEMS]]
        detail = problem_list(first, len(exc.errors), language_of(request))
        return JSONResponse({"detail": detail}, status_code=422)

    async def dispatcher_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DispatcherError)
        language = language_of(request)
        detail = _clip(translate(str(exc), language), 2000)
        if isinstance(exc, CannotResend):
            body = _resend_refused(exc, detail, language)
            return JSONResponse(body, status_code=_status_of(exc))
        return JSONResponse({"detail": detail}, status_code=_status_of(exc))

    async def auth_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthProblem)
        detail = translate(exc.detail, language_of(request))
        return JSONResponse({"detail": detail}, status_code=exc.status, headers=exc.headers)

    async def request_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = [_request_problem(error) for error in errors[:MAX_PROBLEMS]]
        detail = problem_list(first, len(errors), language_of(request))
        return JSONResponse({"detail": detail}, status_code=422)

    async def http_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        language = language_of(request)
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not decode (not UTF-8, say).
            # Bodies the routes read themselves answer 422 then; so do these.
            message = translate("the body is not UTF-8 JSON; send a JSON document", language)
            return JSONResponse({"detail": [{"path": "", "message": message}]}, status_code=422)
        if exc.status_code == 405:
            # Starlette names only the methods of the first route on the path,
            # but GET and POST of one path are separate routes here.
            allowed = ", ".join(_allowed_methods(request))
            message = f"{request.method} is not allowed here; use {allowed}"
            return JSONResponse(
                {"detail": translate(message, language)},
                status_code=405,
                headers={"Allow": allowed},
            )
        detail = _translated_detail(exc.detail, language)
        return await http_exception_handler(
            request, DetailedHTTPException(exc.status_code, detail, exc.headers)
        )

    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(DispatcherError, dispatcher_error)
    app.add_exception_handler(AuthProblem, auth_problem)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_problem)


def _resend_refused(exc: CannotResend, detail: str, language: str) -> dict[str, Any]:
    """A refused resend as data too: the web UI asks "send anyway?" without quoting prose."""
    if isinstance(exc, AddressSuppressed):
        refused = schemas.ResendRefused(
            detail=detail,
            code="address_suppressed",
            address=exc.address,
            since=exc.since,
            reason=translate_record(exc.reason, language),
        )
    else:
        refused = schemas.ResendRefused(detail=detail, code="not_finished")
    return refused.model_dump(mode="json", exclude_none=True)


def _request_problem(error: Any) -> tuple[str, str]:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return "", f"the body is not valid JSON ({reason}); send JSON"
    message = str(error.get("msg", ""))
    if error.get("type") == "value_error":
        # Our own validators' messages; pydantic's prefix adds nothing.
        message = message.removeprefix("Value error, ")
    return _field_path(error.get("loc", ())), message


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


# Request bodies. The documents (settings, previews of drafts, lists of up to
# 1,000 events) may be large; every other body is a few fields. Each is
# refused by its Content-Length before a byte is read, or as soon as a
# streamed (chunked) body passes the limit, and must arrive in BODY_SECONDS.
SMALL_BODY_BYTES = 256 * 1024
SMALL_BODY_VALUES = 10_000
BODY_SECONDS = 30.0
_LARGE_BODY_PATHS = re.compile(r"/v1/events|/v1/groups/[^/]+/(?:settings|preview)")
# Bodies up to this size are checked in the event loop; larger in a thread.
_INLINE_CHECK_BYTES = 64 * 1024


def body_limits(path: str) -> tuple[int, int]:
    """The most bytes, and JSON values, a request body to ``path`` may have."""
    if _LARGE_BODY_PATHS.fullmatch(path):
        return MAX_BODY_BYTES, MAX_VALUES
    return SMALL_BODY_BYTES, SMALL_BODY_VALUES


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"the request body is larger than {limit} bytes, the most this endpoint takes; "
        "send a smaller one",
        headers={"Connection": "close"},
    )


def json_structure_problem(body: bytes, max_values: int) -> str | None:
    """Why a JSON body nests too deep or holds too many values, or None.

    A body that is not JSON at all passes: the route says what is wrong with
    it in its own words.
    """
    try:
        data = json.loads(body)
    except RecursionError:
        return nesting_message()
    except ValueError:
        return None
    return structure_problem(data, max_values=max_values)


class _GuardedBody:
    """The request's ``receive``, counting bytes and checking the whole body's shape.

    Refusals are raised as HTTPExceptions from ``receive``: FastAPI passes
    those through while it reads a body, and the exception handlers answer
    them in the product's problem shape.
    """

    def __init__(self, receive: Receive, limit: int, max_values: int, json_body: bool) -> None:
        self.inner = receive
        self.limit = limit
        self.max_values = max_values
        self.json_body = json_body
        self.deadline = anyio.current_time() + BODY_SECONDS
        self.size = 0
        self.chunks: list[bytes] = []
        self.complete = False

    async def receive(self) -> Message:
        if self.complete:
            return await self.inner()
        message: Message | None = None
        with anyio.move_on_after(max(self.deadline - anyio.current_time(), 0)):
            message = await self.inner()
        if message is None:
            raise HTTPException(
                408,
                f"the request body did not arrive within {BODY_SECONDS:.0f} seconds; "
                "send it at once",
                headers={"Connection": "close"},
            )
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if self.size > self.limit:
            raise _too_large(self.limit)
        if self.json_body:
            self.chunks.append(chunk)
        if message.get("more_body", False):
            return message
        self.complete = True
        if self.json_body:
            body, self.chunks = b"".join(self.chunks), []
            if len(body) <= _INLINE_CHECK_BYTES:
                problem = json_structure_problem(body, self.max_values)
            else:
                problem = await anyio.to_thread.run_sync(
                    json_structure_problem, body, self.max_values
                )
            if problem:
                raise DetailedHTTPException(422, [{"path": "", "message": f"the body {problem}"}])
        return message


class BodyLimits:
    """ASGI middleware: bounded request bodies on every route, sign-in included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if (length is None and "transfer-encoding" not in headers) or length == "0":
            await self.app(scope, receive, send)  # No body.
            return
        limit, max_values = body_limits(scope["path"])
        if length is not None and (not length.isdigit() or int(length) > limit):
            exc = _too_large(limit)
            response = JSONResponse(
                {"detail": translate(exc.detail, language_of(scope))},
                status_code=exc.status_code,
                headers=exc.headers,
            )
            await response(scope, receive, send)
            return
        content_type = headers.get("content-type", "").lower()
        # YAML is read, and bounded, by config_store.document.load.
        guarded = _GuardedBody(receive, limit, max_values, json_body="yaml" not in content_type)

        async def send_closing_early(message: Message) -> None:
            if message["type"] == "http.response.start" and not guarded.complete:
                # Answered before the body was read (refused, or never needed):
                # close the connection rather than read on what may be endless.
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, guarded.receive, send_closing_early)


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
            _document_body_limits(document)
            app.openapi_schema = document
        return app.openapi_schema

    return build


def _document_body_limits(document: dict[str, Any]) -> None:
    """Add BodyLimits' answers to every operation that takes a body."""
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document.get("paths", {}).items():
        limit, _ = body_limits(path.replace("{code}", "X"))
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "413",
                {"description": f"The body is larger than {limit} bytes.", "content": problem},
            )
            responses.setdefault(
                "408",
                {
                    "description": f"The body did not arrive within {BODY_SECONDS:.0f} seconds.",
                    "content": problem,
                },
            )


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
    tracing.instrument_api(app, config)  # JSON logs, traces (OTEL_EXPORTER_OTLP_ENDPOINT)
    _install_error_handlers(app)
    # Innermost of the middleware: its answers get the security headers too.
    app.add_middleware(BodyLimits)
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
