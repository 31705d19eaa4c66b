"""The web UI: one HTML page with a small script, and its sign-in session.

The page is a shell; the script builds every view from the JSON API, sending
the session cookie and, with every change, the session's CSRF token.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dispatcher.admin.access import scope_allows
from dispatcher.api import schemas
from dispatcher.api.auth import SESSION_COOKIE, AuthProblem, Principal
from dispatcher.api.form import form_description
from dispatcher.api.routes import problems
from dispatcher.api.runtime import requires, runtime_of

HERE = Path(__file__).parent
STATIC = HERE / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    # E-mail HTML carries inline styles; previews show it in a sandboxed frame.
    "style-src 'self' 'unsafe-inline'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(tags=["web UI"])
Session = Annotated[Principal, Depends(requires(None))]


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )


@functools.cache
def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _script_json(data: object) -> str:
    # Inside <script> only "</" could end the element early; escaping "<"
    # (and "&" for good measure) keeps the JSON inert.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace("&", "\\u0026")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    page = (
        _environment()
        .get_template("index.html")
        .render(form_json=_script_json(form_description()), version=_asset_version())
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.post(
    "/ui/session",
    response_model=schemas.SessionInfo,
    responses=problems(401, 403, 422),
)
def sign_in(request: Request, response: Response, body: schemas.SignIn) -> schemas.SessionInfo:
    """Open a web UI session with a read or admin token; sets an HttpOnly cookie."""
    # A cross-site page must not sign a victim into the attacker's account
    # ("login CSRF"); browsers send Origin with every cross-site POST.
    if not _same_origin(request):
        raise AuthProblem(403, "sign in from the web UI's own page")
    runtime = runtime_of(request)
    info = runtime.admin().access.authenticate(body.token.strip())
    if info is None:
        raise AuthProblem(401, "the token is not valid or was revoked; check it and try again")
    if not scope_allows(info.scope, "read"):
        raise AuthProblem(
            403, f"a {info.scope!r} token cannot use the web UI; sign in with a read or admin token"
        )
    value, session = runtime.signer.issue(info.id)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=runtime.api.cookie_secure or request.url.scheme == "https",
        path="/",
    )
    return schemas.SessionInfo(name=info.name, scope=info.scope, csrf_token=session.csrf_token)


@router.get("/ui/session", response_model=schemas.SessionInfo, responses=problems(401, 422))
def current_session(principal: Session) -> schemas.SessionInfo:
    """The signed-in token's name and scope, and the session's CSRF token."""
    if principal.csrf_token is None:
        raise AuthProblem(401, "no web UI session; sign in on the web UI's page")
    return schemas.SessionInfo(
        name=principal.name, scope=principal.scope, csrf_token=principal.csrf_token
    )


@router.delete("/ui/session", status_code=204, responses=problems(401, 403, 422))
def sign_out(response: Response, _: Session) -> Response:
    """End the web UI session (needs the X-CSRF-Token header)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.status_code = 204
    return response
