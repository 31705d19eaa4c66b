"""Customer groups: list, add, show."""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_store.repository import GroupInfo
from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Administrator, GroupCode, Reader, problems
from dispatcher.api.runtime import runtime_of

router = APIRouter()


def _group(info: GroupInfo) -> schemas.Group:
    return schemas.Group(
        code=info.code,
        name=info.name,
        created_at=info.created_at,
        current_version=info.current_version,
    )


@router.get(
    "/v1/groups", tags=["groups"], response_model=list[schemas.Group], responses=problems(*AUTH)
)
def list_groups(request: Request, _: Reader) -> list[schemas.Group]:
    """The customer groups set up for the portal."""
    return [_group(g) for g in runtime_of(request).admin().settings.list_groups()]


@router.post(
    "/v1/groups",
    tags=["groups"],
    status_code=201,
    response_model=schemas.Group,
    responses=problems(*AUTH, 409),
)
def add_group(
    request: Request, body: schemas.GroupCreate, principal: Administrator
) -> schemas.Group:
    """Set a customer group up for the portal."""
    info = runtime_of(request).admin().add_group(principal.name, body.code, body.name)
    return _group(info)


@router.get(
    "/v1/groups/{code}",
    tags=["groups"],
    response_model=schemas.GroupDetail,
    responses=problems(*AUTH, 404),
)
def get_group(request: Request, code: GroupCode, _: Reader) -> schemas.GroupDetail:
    """One customer group, with who saved its current settings and when."""
    runtime = runtime_of(request)
    admin = runtime.admin()
    details = admin.group(code)
    path = None
    if details.group.current_version is not None:
        found = runtime.relays().path_of(admin.settings.snapshot(details.group.code))
        path = schemas.DeliveryPath(
            sender_domain=found.sender_domain,
            relays=list(found.relays),
            dkim_selector=found.dkim_selector,
        )
    return schemas.GroupDetail(
        **_group(details.group).model_dump(),
        saved_by=details.saved_by,
        saved_at=details.saved_at,
        delivery_path=path,
    )
