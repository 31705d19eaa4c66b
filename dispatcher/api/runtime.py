"""What one API process holds, and the FastAPI dependency that lets callers in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from dispatcher.admin.pipeline import Pipeline
from dispatcher.admin.relays import Relays
from dispatcher.admin.status import StateCollector
from dispatcher.admin.use_cases import Admin
from dispatcher.api.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AuthProblem,
    Principal,
    SessionSigner,
    check_scope,
    from_bearer,
    from_session,
)
from dispatcher.api.config import ApiSettings
from dispatcher.settings import Settings


@dataclass
class Runtime:
    """The process's database, pipeline and session signer; the admin side is made on first use.

    Building the admin side checks the database schema; doing that lazily lets
    the process start, and answer /healthz and /readyz, while the database is
    still down or not migrated.
    """

    engine_factory: Callable[[], Engine]
    config: Settings
    api: ApiSettings
    pipeline: Pipeline
    signer: SessionSigner
    _admin: Admin | None = field(default=None, init=False)
    _state: StateCollector | None = field(default=None, init=False)
    _relays: Relays | None = field(default=None, init=False)
    _engine: Engine | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self.engine_factory()
            return self._engine

    def dispose(self) -> None:
        """Close the engine's connections (only for an engine this runtime made)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()

    def state(self) -> StateCollector:
        """The gauges of ``/metrics`` read at scrape time, over this process's database."""
        engine = self.engine()
        with self._lock:
            if self._state is None:
                self._state = StateCollector(engine, self.config)
            return self._state

    def relays(self) -> Relays:
        """The relays file and DKIM keys, read as the workers read them."""
        with self._lock:
            if self._relays is None:
                self._relays = Relays(self.config)
            return self._relays

    def admin(self) -> Admin:
        engine = self.engine()
        with self._lock:
            if self._admin is None:
                self._admin = Admin(engine, self.config, self.pipeline)
            return self._admin


def runtime_of(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


# Declared for the OpenAPI document; the dependency below reads the headers
# itself so that every failure gets the product's own one-line message.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A token made with: dispatcher tokens create --scope publish|read|admin --name N",
)
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="webSession",
    description=f"The web UI's session; changes also need the {CSRF_HEADER} header.",
)


def requires(scope: str | None) -> Callable[..., Principal]:
    """A dependency that lets in callers whose token covers ``scope`` (None: any token)."""

    def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        _session: Annotated[str | None, Depends(session_scheme)],
    ) -> Principal:
        runtime = runtime_of(request)
        header = request.headers.get("authorization")
        if header is not None:
            principal = from_bearer(header, runtime.admin().access)
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise AuthProblem(
                    401,
                    "this needs a token: send 'Authorization: Bearer TOKEN' (create one with: "
                    "dispatcher tokens create --scope SCOPE --name NAME)",
                )
            principal = from_session(
                cookie,
                request.method,
                request.headers.get(CSRF_HEADER),
                runtime.admin().access,
                runtime.signer,
            )
        return check_scope(principal, scope)

    return dependency
