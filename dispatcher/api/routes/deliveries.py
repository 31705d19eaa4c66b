"""Deliveries and dead letters: list, and replay.

A delivery's texts (its last reply, bounce and feedback) are partly the
product's words ("the address is on the suppression list: ...") and partly a
mail server's: the first come in the language of Accept-Language, the second
as the server wrote them (``dispatcher.i18n.translate_record``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
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
from dispatcher.delivery.views import DeliveryFilter, DeliveryView
from dispatcher.domain.kinds import lookup_kind
from dispatcher.domain.statuses import STATUSES, DeliveryStatus
from dispatcher.errors import DispatcherError, FieldError
from dispatcher.i18n import translate, translate_record

router = APIRouter()


@router.get(
    "/v1/deliveries",
    tags=["deliveries"],
    response_model=schemas.DeliveryPage,
    responses=problems(*AUTH),
)
def deliveries(
    request: Request,
    _: Reader,
    event_id: Annotated[str | None, AfterValidator(no_nul)] = None,
    group: Annotated[str | None, AfterValidator(no_nul)] = None,
    status: Annotated[
        str | None,
        Query(description=", ".join(STATUSES), json_schema_extra={"enum": list(STATUSES)}),
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            description="An e-mail kind or its settings section.",
            json_schema_extra={"enum": schemas.KIND_CHOICES},
        ),
    ] = None,
    recipient: Annotated[str | None, AfterValidator(no_nul)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> schemas.DeliveryPage:
    """Deliveries, newest first, filtered and paged."""
    errors: list[FieldError] = []
    if status is not None and status not in STATUSES:
        errors.append(FieldError("status", f"use one of: {', '.join(STATUSES)}"))
    if kind is not None:
        try:
            kind = lookup_kind(kind).name
        except DispatcherError as exc:
            errors.append(FieldError("kind", str(exc)))
    if errors:
        raise InvalidRequest(errors)
    rows = (
        runtime_of(request)
        .admin()
        .records.deliveries(
            DeliveryFilter(event_id, group, status, kind, recipient, limit=limit + 1, offset=offset)
        )
    )
    more = len(rows) > limit
    shown = rows[:limit]
    states = runtime_of(request).admin().webhooks.states_of(d.id for d in shown)
    return schemas.DeliveryPage(
        items=for_people(shown, language_of(request)),
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
        webhooks={str(key): schemas.WebhookState(**value) for key, value in states.items()},
    )


@router.post(
    "/v1/deliveries/{delivery_id}/resend",
    tags=["deliveries"],
    status_code=202,
    response_model=DeliveryView,
    responses={
        **problems(*AUTH, 404, 503),
        409: {
            "model": schemas.ResendRefused,
            "description": "The address is on the suppression list, or the delivery is still "
            "under way; the answer says which, as data too.",
        },
    },
)
def resend(
    request: Request,
    delivery_id: Annotated[int, PathParam(ge=1, le=schemas.MAX_INT)],
    principal: Administrator,
    body: schemas.ResendRequest | None = None,
) -> DeliveryView:
    """Send a delivery's e-mail again as a new delivery linked to it (``resend_of``)."""
    force = body.force if body is not None else False
    copy = runtime_of(request).admin().resend(principal.name, delivery_id, force=force)
    return for_people([copy], language_of(request))[0]


@router.get(
    "/v1/dead-letters",
    tags=["deliveries"],
    response_model=schemas.DeadLetters,
    responses=problems(*AUTH),
)
def dead_letters(
    request: Request, _: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> schemas.DeadLetters:
    """Dead deliveries and failed events (both replayable), and rejected messages."""
    records = runtime_of(request).admin().records
    language = language_of(request)
    return schemas.DeadLetters(
        deliveries=for_people(
            records.deliveries(DeliveryFilter(status=DeliveryStatus.DEAD, limit=limit)), language
        ),
        events=[
            schemas.FailedEvent(
                event_id=e.event_id,
                type=e.type,
                group=e.customer_group,
                received_at=e.received_at,
                # A reason is one line for a person, in the language asked for.
                reason=translate(e.reason, language) if e.reason else e.reason,
            )
            for e in records.failed_events(limit=limit)
        ],
        rejected=[
            schemas.RejectedMessage(
                id=r.id,
                received_at=r.received_at,
                event_id=r.event_id,
                reason=translate(r.reason, language),
            )
            for r in records.rejected(limit=limit)
        ],
    )


@router.post(
    "/v1/dead-letters/replay",
    tags=["deliveries"],
    status_code=202,
    response_model=schemas.ReplayResponse,
    responses=problems(*AUTH, 503),
)
def replay(
    request: Request, body: schemas.ReplayRequest, principal: Administrator
) -> schemas.ReplayResponse:
    """Send dead deliveries again and re-plan failed events: by id, or all of them."""
    if body.all and (body.ids or body.events):
        raise InvalidRequest([FieldError("all", "give either all: true or ids/events, not both")])
    if not (body.all or body.ids or body.events):
        raise InvalidRequest(
            [FieldError("", "give delivery ids, event ids, or all: true; nothing was replayed")]
        )
    report = (
        runtime_of(request)
        .admin()
        .replay(principal.name, deliveries=body.ids, events=body.events, everything=body.all)
    )
    return schemas.ReplayResponse(
        deliveries=list(report.deliveries),
        events=list(report.events),
        skipped_deliveries=list(report.skipped_deliveries),
        skipped_events=list(report.skipped_events),
    )


def for_people(views: Iterable[DeliveryView], language: str) -> list[DeliveryView]:
    """Deliveries with the product's words in their texts in ``language``."""
    return [
        dataclasses.replace(
            view,
            last_text=translate_record(view.last_text, language),
            bounce_text=translate_record(view.bounce_text, language),
            feedback=translate_record(view.feedback, language),
        )
        for view in views
    ]
