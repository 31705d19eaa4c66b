"""Publishing events over HTTP (CONTRACT §4)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Publisher, problems, read_body
from dispatcher.api.runtime import runtime_of

router = APIRouter()


@router.post(
    "/v1/events",
    tags=["events"],
    status_code=202,
    response_model=schemas.EventsAccepted,
    responses=problems(*AUTH, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One event or a list of events (CONTRACT §2); all are validated "
            "before any is enqueued.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            schemas.EVENT_REF,
                            {"type": "array", "items": schemas.EVENT_REF},
                        ]
                    }
                }
            },
        }
    },
)
async def publish_events(request: Request, _: Publisher) -> schemas.EventsAccepted:
    """Validate one event or a list, then enqueue them all; 202 with their ids."""
    body = await read_body(request)
    admin = runtime_of(request).admin()
    return schemas.EventsAccepted(event_ids=await run_in_threadpool(admin.publish, body))
