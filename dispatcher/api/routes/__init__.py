"""The HTTP API of CONTRACT §6, one module per resource; each decodes, calls admin, encodes."""

from __future__ import annotations

from fastapi import APIRouter

from dispatcher.api.routes import (
    audit,
    deliveries,
    events,
    feedback,
    groups,
    health,
    labels,
    mailbox,
    relays,
    settings,
)
from dispatcher.api.routes.common import problems

# One router with every route, as if they were written in one module: the
# app and its OpenAPI document see plain routes, not nested routers.
router = APIRouter()
for _module in (
    health,
    groups,
    settings,
    events,
    deliveries,
    feedback,
    relays,
    audit,
    mailbox,
    labels,
):
    router.routes.extend(_module.router.routes)

__all__ = ["problems", "router"]
