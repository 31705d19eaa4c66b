"""The relays e-mails go through, and checking one (CONTRACT §9).

What people read (a route's description, a check's steps and problem) comes
in the language of Accept-Language; identifiers (``match``, names, states)
stay as they are for programs.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from dispatcher.admin.relays import RouteInfo
from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Administrator, Reader, language_of, problems
from dispatcher.api.runtime import runtime_of
from dispatcher.i18n import catalogue, keyed, translate_record

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
        routes=[_route(route, language_of(request)) for route in overview.routes],
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
    language = language_of(request)
    [result] = await run_in_threadpool(relays.check, name)
    return schemas.RelayCheck(
        relay=result.relay,
        ok=result.ok,
        steps=[_step(step, language) for step in result.steps],
        problem=translate_record(result.problem, language),
        milliseconds=result.milliseconds,
    )


def _route(route: RouteInfo, language: str) -> schemas.RouteOut:
    if route.sender_domain is not None:
        label = keyed("route.sender domain {domain}", language, domain=route.sender_domain)
    else:
        label = keyed("route.group {code}", language, code=route.group or "")
    return schemas.RouteOut(
        match=route.match,
        relays=list(route.relays),
        sender_domain=route.sender_domain,
        group=route.group,
        label=label or route.match,
    )


def _step(step: str, language: str) -> str:
    """A step of a relay check ("connect host:25", "EHLO") for people."""
    return catalogue(language).lookup(f"relay_step.{step}") or step
