"""Access to the admin API: bearer tokens and the audit log; results are plain dataclasses.

A token is shown once, when it is made; the database keeps only its SHA-256
hash. A stolen database therefore yields no usable token, and since tokens
carry 256 random bits, a plain (unsalted) hash cannot be reversed either.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from config_store.database import require_schema, session_scope
from dispatcher.admin.models import ApiToken, AuditEntry
from dispatcher.domain.textsafety import single_line_problem
from dispatcher.errors import DispatcherError

PUBLISH = "publish"
READ = "read"
ADMIN = "admin"
SCOPES = (PUBLISH, READ, ADMIN)
# What each scope may do. Publishing stays separate from administration on
# purpose: the portal backend's credential can enqueue events and nothing
# else, and an administrator's credential cannot impersonate the backend.
_GRANTS = {PUBLISH: {PUBLISH}, READ: {READ}, ADMIN: {ADMIN, READ}}
MAX_NAME = 100
# Recording every use would turn each read into a write; a minute's
# precision is enough to see which tokens are still in use.
LAST_USED_PRECISION = timedelta(minutes=1)


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a token of scope ``granted`` may do what needs ``needed``."""
    return needed in _GRANTS.get(granted, set())


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise DispatcherError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")
    return scope


def check_token_name(name: str) -> str:
    problem = single_line_problem(name) if name.strip() else "must not be empty"
    if problem is None and name != name.strip():
        problem = "must not start or end with a space"
    if problem is None and len(name) > MAX_NAME:
        problem = f"is longer than {MAX_NAME} characters"
    if problem:
        raise DispatcherError(
            f"the token name {problem}; give a short name such as 'portal-backend'"
        )
    return name


class TokenNameTaken(DispatcherError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"a token named {name!r} exists already (names stay taken after revocation, so "
            "that the audit log stays unambiguous); choose another name"
        )


class UnknownToken(DispatcherError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"there is no token named {name!r}; see them with: dispatcher tokens list")


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` exists only here and in the caller's output."""

    info: TokenInfo
    secret: str = field(repr=False)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    created_at: datetime
    actor: str
    action: str
    target: str
    diff: Any


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time this module returns is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _info(row: ApiToken) -> TokenInfo:
    created = _aware(row.created_at)
    assert created is not None
    return TokenInfo(
        row.id, row.name, row.scope, created, _aware(row.revoked_at), _aware(row.last_used_at)
    )


def _record(row: AuditEntry) -> AuditRecord:
    created = _aware(row.created_at)
    assert created is not None
    return AuditRecord(row.id, created, row.actor, row.action, row.target, row.diff)


class AccessStore:
    """API tokens and the audit log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        require_schema(engine)

    # Tokens -----------------------------------------------------------------

    def create_token(self, name: str, scope: str) -> IssuedToken:
        """Make a token; its secret is returned once and never stored."""
        check_token_name(name)
        check_scope(scope)
        secret = secrets.token_urlsafe(32)
        try:
            with session_scope(self.engine) as session:
                if session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
                    raise TokenNameTaken(name)
                row = ApiToken(
                    name=name, scope=scope, token_hash=hash_token(secret), created_at=_utcnow()
                )
                session.add(row)
                session.flush()
                return IssuedToken(_info(row), secret)
        except IntegrityError:
            raise TokenNameTaken(name) from None

    def list_tokens(self) -> list[TokenInfo]:
        with session_scope(self.engine) as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
            return [_info(row) for row in rows]

    def revoke(self, name: str) -> TokenInfo:
        """Revoke a token at once; revoking twice keeps the first time."""
        with session_scope(self.engine) as session:
            row = session.scalar(select(ApiToken).where(ApiToken.name == name).with_for_update())
            if row is None:
                raise UnknownToken(name)
            if row.revoked_at is None:
                row.revoked_at = _utcnow()
            session.flush()
            return _info(row)

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The active token with this secret, or None; records when it was last used."""
        if not secret or len(secret) > 200:
            return None
        with session_scope(self.engine) as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
            if row is None or row.revoked_at is not None:
                return None
            self._touch(row)
            return _info(row)

    def active_token(self, token_id: int) -> TokenInfo | None:
        """The token with this id if it is still active (for web UI sessions)."""
        with session_scope(self.engine) as session:
            row = session.get(ApiToken, token_id)
            if row is None or row.revoked_at is not None:
                return None
            self._touch(row)
            return _info(row)

    def _touch(self, row: ApiToken) -> None:
        now = _utcnow()
        last = _aware(row.last_used_at)
        if last is None or now - last >= LAST_USED_PRECISION:
            row.last_used_at = now

    # Audit log --------------------------------------------------------------

    def record(self, actor: str, action: str, target: str, diff: Any = None) -> AuditRecord:
        """Append one entry to the audit log; ``diff`` is any JSON value."""
        with session_scope(self.engine) as session:
            row = AuditEntry(
                created_at=_utcnow(), actor=actor, action=action, target=target, diff=diff
            )
            session.add(row)
            session.flush()
            return _record(row)

    def audit(
        self, target: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AuditRecord]:
        """Entries newest first, optionally only those about ``target``."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        if target is not None:
            query = query.where(AuditEntry.target == target)
        with session_scope(self.engine) as session:
            rows = session.scalars(query.limit(limit).offset(offset)).all()
            return [_record(row) for row in rows]
