"""The audit log: every change, whoever made it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator

from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Offset, Reader, no_nul, problems
from dispatcher.api.runtime import runtime_of

router = APIRouter()


@router.get(
    "/v1/audit",
    tags=["audit"],
    response_model=list[schemas.AuditEntry],
    responses=problems(*AUTH),
)
def audit(
    request: Request,
    _: Reader,
    target: Annotated[
        str | None,
        Query(description="A group code, 'dead-letters', ..."),
        AfterValidator(no_nul),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[schemas.AuditEntry]:
    """Every change made through the API, the web UI and the token commands, newest first."""
    rows = runtime_of(request).admin().audit(target, limit, offset)
    return [
        schemas.AuditEntry(
            id=r.id,
            created_at=r.created_at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            diff=r.diff,
        )
        for r in rows
    ]
