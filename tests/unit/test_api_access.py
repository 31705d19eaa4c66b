"""Who gets in: bearer tokens and scopes, web UI sessions, CSRF, CORS."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import select

from config_store.database import session_scope
from dispatcher.admin.access import AccessStore, scope_allows
from dispatcher.admin.models import ApiToken
from dispatcher.api.auth import SESSION_COOKIE, SessionSigner
from dispatcher.api.config import ApiSettings
from dispatcher.errors import DispatcherError
from tests.support.api_support import SECRET, Api, api_routes, make_client
from tests.support.documents import full

# Every endpoint that needs a token, with the scope it needs.
PROTECTED = [
    ("GET", "/metrics", "read"),
    ("GET", "/openapi.json", None),
    ("GET", "/v1/groups", "read"),
    ("POST", "/v1/groups", "admin"),
    ("GET", "/v1/groups/RETAIL", "read"),
    ("GET", "/v1/groups/RETAIL/settings", "read"),
    ("PUT", "/v1/groups/RETAIL/settings", "admin"),
    ("GET", "/v1/groups/RETAIL/settings/history", "read"),
    ("POST", "/v1/groups/RETAIL/settings/rollback", "admin"),
    ("POST", "/v1/groups/RETAIL/preview", "read"),
    ("POST", "/v1/groups/RETAIL/test-send", "admin"),
    ("POST", "/v1/events", "publish"),
    ("GET", "/v1/deliveries", "read"),
    ("GET", "/v1/dead-letters", "read"),
    ("POST", "/v1/dead-letters/replay", "admin"),
    ("POST", "/v1/deliveries/1/resend", "admin"),
    ("GET", "/v1/suppressions", "read"),
    ("POST", "/v1/suppressions", "admin"),
    ("DELETE", "/v1/suppressions/ADDRESS", "admin"),
    ("GET", "/v1/webhooks", "read"),
    ("POST", "/v1/webhooks/replay", "admin"),
    ("GET", "/v1/relays", "read"),
    ("POST", "/v1/relays/default/check", "admin"),
    ("GET", "/v1/audit", "read"),
    ("GET", "/v1/mailbox", "read"),
    ("GET", "/v1/mailbox/MESSAGE.eml", "read"),
    ("GET", "/v1/labels", None),
    ("GET", "/ui/session", None),
    ("DELETE", "/ui/session", None),
]


def test_every_protected_route_is_listed() -> None:
    routes = {(method, route.path) for route in api_routes() for method in route.methods}
    listed = {
        (
            method,
            path.replace("RETAIL", "{code}")
            .replace("MESSAGE.eml", "{file}")
            .replace("/1/", "/{delivery_id}/")
            .replace("ADDRESS", "{address}")
            .replace("/default/", "/{name}/"),
        )
        for method, path, _ in PROTECTED
    }
    open_routes = {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/"),
        ("POST", "/ui/session"),
    }
    assert routes == listed | open_routes


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
def test_without_a_token_every_endpoint_answers_401(
    api: Api, method: str, path: str, scope: str | None
) -> None:
    response = api.client.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # What to send, without command-line advice (a web UI user cannot follow it).
    assert "Authorization: Bearer TOKEN" in response.json()["detail"]
    assert "dispatcher tokens create" not in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "bearer"],
)
def test_a_bad_authorization_header_answers_401(api: Api, header: str) -> None:
    response = api.client.get("/v1/groups", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_answers_401_at_once(api: Api) -> None:
    assert api.get("/v1/groups", "read").status_code == 200
    api.access.revoke("read")
    response = api.get("/v1/groups", "read")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "needed"), [p for p in PROTECTED if p[2]])
def test_each_scope_reaches_exactly_its_endpoints(
    api: Api, method: str, path: str, needed: str
) -> None:
    for scope in ("publish", "read", "admin"):
        response = api.client.request(method, path, headers=api.auth(scope), json={})
        if scope_allows(scope, needed):
            assert response.status_code not in {401, 403}, (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert f"needs {needed!r}" in response.json()["detail"]
            assert "WWW-Authenticate" not in response.headers


def test_a_publish_token_cannot_change_settings(api: Api) -> None:
    api.add_group()
    response = api.save(full(), scope="publish")
    assert response.status_code == 403
    assert "has scope 'publish', this needs 'admin'" in response.json()["detail"]
    assert api.get("/v1/groups/RETAIL").json()["current_version"] is None


def test_health_and_readiness_need_no_token_and_tell_anonymous_callers_only_up_or_down(
    api: Api,
) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": None, "broker": None}
    assert api.get("/readyz", "read").json() == {"status": "ok", "database": "ok", "broker": "ok"}
    for header in ("Bearer not-a-token", "Basic eDp5"):
        body = api.client.get("/readyz", headers={"Authorization": header}).json()
        assert body == {"status": "ok", "database": None, "broker": None}


def test_readiness_names_what_is_down_to_a_reader_only(api: Api) -> None:
    api.pipeline.broker_down = True
    anonymous = api.client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "unavailable", "database": None, "broker": None}
    response = api.get("/readyz", "read")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["broker"].startswith("cannot reach Redis")


def test_tokens_are_stored_as_hashes_only(api: Api) -> None:
    with session_scope(api.engine) as session:
        rows = session.scalars(select(ApiToken)).all()
        stored = {row.name: (row.token_hash, row.scope) for row in rows}
    for scope, secret in api.tokens.items():
        assert stored[scope] == (hashlib.sha256(secret.encode()).hexdigest(), scope)
        for row_hash, _ in stored.values():
            assert secret not in row_hash


def test_a_token_is_random_and_its_use_is_recorded(api: Api) -> None:
    access = api.access
    first = access.create_token("one", "read").secret
    second = access.create_token("two", "read").secret
    assert first != second
    assert len(first) >= 43
    api.client.get("/v1/groups", headers={"Authorization": f"Bearer {first}"})
    used = {t.name: t.last_used_at for t in access.list_tokens()}
    assert used["one"] is not None
    assert used["two"] is None


# Web UI sessions --------------------------------------------------------------


def sign_in(api: Api, scope: str = "admin") -> str:
    response = api.client.post("/ui/session", json={"token": api.tokens[scope]})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_signing_in_sets_a_strict_http_only_cookie_without_secrets(api: Api) -> None:
    response = api.client.post("/ui/session", json={"token": api.tokens["admin"]})
    assert response.status_code == 200
    assert response.json()["name"] == "admin"
    assert response.json()["scope"] == "admin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # Plain HTTP in this test; HTTPS requests get Secure.
    for secret in api.tokens.values():
        assert secret not in cookie
        assert hashlib.sha256(secret.encode()).hexdigest() not in cookie


def test_a_session_reads_and_changes_only_with_its_csrf_token(api: Api) -> None:
    csrf = sign_in(api)
    assert api.client.get("/v1/groups").status_code == 200
    assert api.client.get("/ui/session").json()["csrf_token"] == csrf
    body = {"code": "RETAIL", "name": "Retail"}
    missing = api.client.post("/v1/groups", json=body)
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    wrong = api.client.post("/v1/groups", json=body, headers={"X-CSRF-Token": csrf + "x"})
    assert wrong.status_code == 403
    assert api.client.get("/v1/groups").json() == []
    right = api.client.post("/v1/groups", json=body, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 201
    audit = api.get("/v1/audit").json()
    assert audit[0]["actor"] == "admin"
    assert audit[0]["action"] == "group.add"


def test_bearer_calls_need_no_csrf_token_even_with_a_session_cookie(api: Api) -> None:
    sign_in(api, "read")
    response = api.post("/v1/groups", json={"code": "RETAIL", "name": "Retail"})
    assert response.status_code == 201


def test_signing_out_needs_the_csrf_token_and_ends_the_session(api: Api) -> None:
    csrf = sign_in(api)
    assert api.client.delete("/ui/session").status_code == 403
    response = api.client.delete("/ui/session", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert (
        f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
        or "Max-Age=0" in (response.headers["set-cookie"])
    )
    assert api.client.get("/v1/groups").status_code == 401


def test_revoking_the_token_ends_its_sessions(api: Api) -> None:
    sign_in(api)
    api.access.revoke("admin")
    response = api.client.get("/v1/groups")
    assert response.status_code == 401
    assert "sign in again" in response.json()["detail"]


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [("nonsense", 401, "not valid"), ("publish", 403, "cannot use the web UI")],
)
def test_signing_in_is_refused_for_bad_and_publish_tokens(
    api: Api, token: str, status: int, words: str
) -> None:
    secret = api.tokens.get(token, token)
    response = api.client.post("/ui/session", json={"token": secret})
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert "set-cookie" not in response.headers


def test_signing_in_from_another_site_is_refused(api: Api) -> None:
    response = api.client.post(
        "/ui/session",
        json={"token": api.tokens["admin"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    same = api.client.post(
        "/ui/session", json={"token": api.tokens["admin"]}, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 200


def test_forged_damaged_and_expired_sessions_are_refused(api: Api) -> None:
    signer = SessionSigner(SECRET.encode(), 3600)
    token_id = next(t.id for t in api.access.list_tokens() if t.name == "admin")
    good, _ = signer.issue(token_id)
    expired, _ = signer.issue(token_id, now=time.time() - 13 * 3600)  # Default: 12 hours.
    forged, _ = SessionSigner(b"another key" * 4, 3600).issue(token_id)
    for value, status in [(good, 200), (expired, 401), (forged, 401), (good[:-2], 401), ("x", 401)]:
        api.client.cookies.set(SESSION_COOKIE, value)
        assert api.client.get("/v1/groups").status_code == status, value


def test_session_signer_round_trip_and_tamper_checks() -> None:
    signer = SessionSigner(b"k" * 32, 60)
    value, data = signer.issue(7, now=1000.0)
    assert signer.read(value, now=1030.0) == data
    assert signer.read(value, now=1061.0) is None
    assert signer.read(value, now=999.0) is None
    version, payload, signature = value.split(".")
    assert signer.read(f"{version}.{payload}x.{signature}", now=1030.0) is None
    assert signer.read(f"v2.{payload}.{signature}", now=1030.0) is None


# CORS -------------------------------------------------------------------------


def test_cors_is_off_by_default(api: Api) -> None:
    response = api.client.options(
        "/v1/groups",
        headers={"Origin": "https://portal.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers
    plain = api.get("/v1/groups", headers={"Origin": "https://portal.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allows_only_the_configured_origins_without_credentials(api: Api) -> None:
    settings = ApiSettings(secret=SECRET, cors_origins="https://portal.example, https://b.example")
    with make_client(api.engine, api_settings=settings) as client:
        allowed = client.options(
            "/v1/groups",
            headers={
                "Origin": "https://portal.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example"
        assert "access-control-allow-credentials" not in allowed.headers
        other = client.options(
            "/v1/groups",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_a_short_session_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 32 characters"):
        ApiSettings(secret="short")


def test_token_store_checks_names_and_scopes(api: Api) -> None:
    access: AccessStore = api.access
    with pytest.raises(DispatcherError, match="unknown scope"):
        access.create_token("x", "root")
    with pytest.raises(DispatcherError, match="must not be empty"):
        access.create_token(" ", "read")
    with pytest.raises(DispatcherError, match="single line"):
        access.create_token("a\nb", "read")
    with pytest.raises(DispatcherError, match="exists already"):
        access.create_token("admin", "read")
    with pytest.raises(DispatcherError, match="no token named"):
        access.revoke("nobody")
    first = access.revoke("read").revoked_at
    assert access.revoke("read").revoked_at == first
