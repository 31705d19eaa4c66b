"""The relays e-mails go through, and checking one (CONTRACT §9)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Administrator, Reader, problems
from dispatcher.api.runtime import runtime_of

router = APIRouter()


@router.get("/v1/relays", tags=["relays"], response_model=schemas.Relays, responses=problems(*AUTH))
def list_relays(request: Request, _: Reader) -> schemas.Relays:
    """The relays, the routes and each relay's breaker; never a password."""
    overview = runtime_of(request).relays().overview(time.time())
    return schemas.Relays(
        from_file=overview.from_file,
        relays=[
            schemas.RelayOut(
                name=r.name,
                host=r.host,
                port=r.port,
                security=r.security,
                authenticates=r.authenticates,
                breaker=r.breaker,
            )
            for r in overview.relays
        ],
        routes=[schemas.RouteOut(match=r.match, relays=list(r.relays)) for r in overview.routes],
        default=list(overview.default),
    )


@router.post(
    "/v1/relays/{name}/check",
    tags=["relays"],
    response_model=schemas.RelayCheck,
    responses=problems(*AUTH, 404),
)
async def check_relay(
    request: Request,
    name: Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
    _: Administrator,
    body: schemas.RelayCheckRequest | None = None,
) -> schemas.RelayCheck:
    """Connect, EHLO, STARTTLS/TLS and AUTH on one relay ("Verbindung testen"); nothing is sent."""
    relays = runtime_of(request).relays()
    [result] = await run_in_threadpool(relays.check, name)
    return schemas.RelayCheck(
        relay=result.relay,
        ok=result.ok,
        steps=list(result.steps),
        problem=result.problem,
        milliseconds=result.milliseconds,
    )
