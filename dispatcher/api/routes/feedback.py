"""The suppression list and the webhook outbox (CONTRACT §8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator

from dispatcher.admin.use_cases import InvalidRequest
from dispatcher.api import schemas
from dispatcher.api.routes.common import (
    AUTH,
    Administrator,
    Offset,
    Reader,
    language_of,
    no_nul,
    problems,
)
from dispatcher.api.runtime import runtime_of
from dispatcher.delivery.suppressions import SuppressionView
from dispatcher.delivery.webhooks import WebhookView
from dispatcher.domain.statuses import WebhookStatus
from dispatcher.errors import FieldError
from dispatcher.i18n import translate_record

router = APIRouter()


def _suppression(
    entry: SuppressionView, internal: dict[str, list[str]], language: str
) -> schemas.Suppression:
    return schemas.Suppression(
        address=entry.address,
        # A bounce's reason is the product's words around the server's; one
        # typed by an administrator stays as typed.
        reason=translate_record(entry.reason, language),
        since=entry.since,
        source_delivery_id=entry.source_delivery_id,
        created_by=entry.created_by,
        internal_for_groups=internal.get(entry.address, []),
    )


@router.get(
    "/v1/suppressions",
    tags=["suppressions"],
    response_model=schemas.SuppressionPage,
    responses=problems(*AUTH),
)
def list_suppressions(
    request: Request,
    _: Reader,
    search: Annotated[str | None, Query(max_length=320), AfterValidator(no_nul)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> schemas.SuppressionPage:
    """Suppressed addresses, newest first; ``search`` matches address or reason."""
    admin = runtime_of(request).admin()
    entries, total = admin.suppressions.entries(search, limit, offset)
    internal = admin.internal_addresses()
    return schemas.SuppressionPage(
        items=[_suppression(e, internal, language_of(request)) for e in entries],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/v1/suppressions",
    tags=["suppressions"],
    status_code=201,
    response_model=schemas.Suppression,
    responses=problems(*AUTH),
)
def add_suppression(
    request: Request, body: schemas.SuppressionRequest, principal: Administrator
) -> schemas.Suppression:
    """Put an address on the suppression list (audited); an address there already stays."""
    admin = runtime_of(request).admin()
    entry = admin.suppress(principal.name, body.address, body.reason)
    return _suppression(entry, admin.internal_addresses(), language_of(request))


@router.delete(
    "/v1/suppressions/{address}",
    tags=["suppressions"],
    response_model=schemas.Suppression,
    responses=problems(*AUTH, 404),
)
def remove_suppression(
    request: Request,
    address: Annotated[str, Path(max_length=320), AfterValidator(no_nul)],
    principal: Administrator,
) -> schemas.Suppression:
    """Take an address off the suppression list (audited)."""
    admin = runtime_of(request).admin()
    return _suppression(admin.unsuppress(principal.name, address), {}, language_of(request))


def _webhook(message: WebhookView) -> schemas.Webhook:
    return schemas.Webhook(
        id=message.id,
        webhook_id=message.webhook_id,
        type=message.event_type,
        endpoint=message.endpoint,
        delivery_id=message.delivery_id,
        status=message.status.value,
        attempts=message.attempts,
        created_at=message.created_at,
        next_attempt_at=message.next_attempt_at,
        delivered_at=message.delivered_at,
        last_error=message.last_error,
    )


@router.get(
    "/v1/webhooks",
    tags=["webhooks"],
    response_model=list[schemas.Webhook],
    responses=problems(*AUTH),
)
def list_webhooks(
    request: Request,
    _: Reader,
    status: Annotated[
        str | None, Query(json_schema_extra={"enum": [s.value for s in WebhookStatus]})
    ] = None,
    delivery_id: Annotated[int | None, Query(ge=1, le=schemas.MAX_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[schemas.Webhook]:
    """Webhooks to the portal backend, newest first."""
    if status is not None and status not in {s.value for s in WebhookStatus}:
        choices = ", ".join(s.value for s in WebhookStatus)
        raise InvalidRequest([FieldError("status", f"use one of: {choices}")])
    wanted = WebhookStatus(status) if status is not None else None
    outbox = runtime_of(request).admin().webhooks
    return [_webhook(m) for m in outbox.messages(wanted, delivery_id, limit)]


@router.post(
    "/v1/webhooks/replay",
    tags=["webhooks"],
    status_code=202,
    response_model=schemas.WebhookReplayResponse,
    responses=problems(*AUTH, 503),
)
def replay_webhooks(
    request: Request, body: schemas.WebhookReplayRequest, principal: Administrator
) -> schemas.WebhookReplayResponse:
    """Send failed webhooks again: by id, or all of them."""
    if body.all == bool(body.ids):
        raise InvalidRequest([FieldError("", "give webhook ids or all: true (not both)")])
    replayed = (
        runtime_of(request).admin().replay_webhooks(principal.name, body.ids, everything=body.all)
    )
    return schemas.WebhookReplayResponse(replayed=replayed)
