"""Who is calling: bearer tokens for programs, signed session cookies for the web UI.

A web UI session is a cookie that names the token it was opened with, a
CSRF token and the time it began, signed with HMAC-SHA256. It carries no
token and no hash of one; each request looks the token up again, so revoking
a token ends its sessions at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from dispatcher.admin.access import AccessStore, scope_allows

SESSION_COOKIE = "dispatcher_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMAT = "v1"

NEW_TOKEN_HINT = "create one with: dispatcher tokens create --scope SCOPE --name NAME"  # noqa: S105


class AuthProblem(Exception):
    """The caller is not let in: 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": 'Bearer realm="dispatcher"'}
        return {}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; ``name`` is the token's name, recorded as the actor."""

    name: str
    scope: str
    token_id: int
    via: str  # "bearer" or "session"
    csrf_token: str | None = None


@dataclass(frozen=True)
class SessionData:
    token_id: int
    csrf_token: str
    issued_at: float


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks signed session cookie values."""

    def __init__(self, key: bytes, max_age_seconds: float) -> None:
        self._key = key
        self.max_age_seconds = max_age_seconds

    def _signature(self, payload: str) -> str:
        return _encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, token_id: int, now: float | None = None) -> tuple[str, SessionData]:
        data = SessionData(token_id, secrets.token_urlsafe(32), time.time() if now is None else now)
        body = json.dumps(
            {"t": data.token_id, "c": data.csrf_token, "i": data.issued_at},
            separators=(",", ":"),
        )
        payload = f"{_FORMAT}.{_encode(body.encode('utf-8'))}"
        return f"{payload}.{self._signature(payload)}", data

    def read(self, value: str, now: float | None = None) -> SessionData | None:
        """The session in a cookie value, or None if it is forged, damaged or too old."""
        version, _, rest = value.partition(".")
        encoded, _, signature = rest.partition(".")
        if version != _FORMAT or not encoded or not signature:
            return None
        if not hmac.compare_digest(signature, self._signature(f"{version}.{encoded}")):
            return None
        try:
            fields = json.loads(_decode(encoded))
            data = SessionData(int(fields["t"]), str(fields["c"]), float(fields["i"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        age = (time.time() if now is None else now) - data.issued_at
        if not 0 <= age <= self.max_age_seconds:
            return None
        return data


def from_bearer(header: str, access: AccessStore) -> Principal:
    """The caller named by an ``Authorization`` header; raise ``AuthProblem`` otherwise."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthProblem(401, f"send the token as 'Authorization: Bearer TOKEN'; {NEW_TOKEN_HINT}")
    info = access.authenticate(credentials.strip())
    if info is None:
        raise AuthProblem(401, f"the token is not valid or was revoked; {NEW_TOKEN_HINT}")
    return Principal(info.name, info.scope, info.id, "bearer")


def from_session(
    cookie: str, method: str, csrf_header: str | None, access: AccessStore, signer: SessionSigner
) -> Principal:
    """The caller of a web UI session; changes need the session's CSRF token."""
    data = signer.read(cookie)
    info = access.active_token(data.token_id) if data else None
    if data is None or info is None:
        raise AuthProblem(401, "the session has ended or its token was revoked; sign in again")
    if method not in SAFE_METHODS and not hmac.compare_digest(
        (csrf_header or "").encode("utf-8"), data.csrf_token.encode("utf-8")
    ):
        raise AuthProblem(
            403, f"the {CSRF_HEADER} header is missing or wrong; reload the page and try again"
        )
    return Principal(info.name, info.scope, info.id, "session", data.csrf_token)


def check_scope(principal: Principal, needed: str | None) -> Principal:
    """Refuse a caller whose token's scope does not cover ``needed`` (None: any scope)."""
    if needed is not None and not scope_allows(principal.scope, needed):
        raise AuthProblem(
            403,
            f"the token {principal.name!r} has scope {principal.scope!r}, this needs "
            f"{needed!r}; use a token with that scope (dispatcher tokens create --scope "
            f"{needed} --name NAME)",
        )
    return principal
