"""What every route module shares: who may call, error descriptions, reading a body."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator
from starlette.datastructures import Headers
from starlette.types import Scope

from config_store.document import load, nesting_message, structure_problem
from dispatcher.admin.access import ADMIN, PUBLISH, READ
from dispatcher.admin.use_cases import InvalidRequest
from dispatcher.api import schemas
from dispatcher.api.auth import Principal
from dispatcher.api.runtime import requires
from dispatcher.domain.fields import GROUP_CODE_PATTERN, check_group_code
from dispatcher.errors import DispatcherError, FieldError
from dispatcher.i18n import negotiate

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_INT = schemas.MAX_INT

Reader = Annotated[Principal, Depends(requires(READ))]
Administrator = Annotated[Principal, Depends(requires(ADMIN))]
Publisher = Annotated[Principal, Depends(requires(PUBLISH))]
AnyToken = Annotated[Principal, Depends(requires(None))]


def language_of(request: Request | Scope) -> str:
    """The language a person reading the answer asked for (``Accept-Language``).

    ``de`` when the header prefers German, else ``en`` (dispatcher.i18n.negotiate).
    """
    headers = request.headers if isinstance(request, Request) else Headers(scope=request)
    return negotiate(headers.get("accept-language"))


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers a route can give."""
    described: dict[int, tuple[type[Any], str]] = {
        401: (schemas.Problem, "No token, or one that is not valid or was revoked."),
        403: (schemas.Problem, "The token's scope does not allow this (or a CSRF check failed)."),
        404: (schemas.Problem, "No such group, settings or version."),
        409: (schemas.Problem, "Conflicts with the current state; the message says what to do."),
        422: (schemas.ValidationProblem, "Every problem with its field path; nothing changed."),
        503: (schemas.Problem, "The database or the broker is unavailable; try again later."),
    }
    return {
        code: {"model": described[code][0], "description": described[code][1]} for code in codes
    }


AUTH = (401, 403, 422)


def no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, so no stored value has one; refusing it
    # here keeps the database from failing on the query instead.
    if value is not None and "\x00" in value:
        raise ValueError("contains a NUL character (U+0000); remove it")
    return value


# The path's group code, checked before it reaches the database: a code that
# cannot exist answers 422 with the rule, one that does not exist 404.
GroupCode = Annotated[
    str,
    Path(
        description="The customer group's code.",
        examples=["RETAIL"],
        json_schema_extra={"pattern": f"^{GROUP_CODE_PATTERN.pattern}$"},
    ),
    AfterValidator(check_group_code),
]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]


def json_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice would silently drop the first text; refuse it, as the
    # YAML reader of the command line does.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice; keep one")
        result[key] = value
    return result


async def read_body(request: Request, *, yaml_allowed: bool = False) -> object:
    """The request's JSON (or YAML) body; raise ``InvalidRequest`` with a one-line reason.

    Its size was bounded before it was read (``BodyLimits`` in api/app.py); its
    nesting and number of values are bounded here, for JSON and YAML alike.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise InvalidRequest([FieldError("", f"the body is larger than {MAX_BODY_BYTES} bytes")])
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest([FieldError("", f"the body is larger than {MAX_BODY_BYTES} bytes")])
    if not raw.strip():
        raise InvalidRequest([FieldError("", "the body is empty; send a JSON document")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest([FieldError("", "the body is not UTF-8 text; send UTF-8")]) from None
    content_type = request.headers.get("content-type", "")
    if yaml_allowed and "yaml" in content_type:
        try:
            return load(text, "the request body")
        except DispatcherError as exc:
            raise InvalidRequest([FieldError("", str(exc))]) from None
    try:
        data = json.loads(text, object_pairs_hook=json_object_pairs)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            [
                FieldError(
                    "",
                    f"the body is not valid JSON at line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}",
                )
            ]
        ) from None
    except ValueError as exc:
        raise InvalidRequest([FieldError("", str(exc))]) from None
    except RecursionError:
        # Python's JSON reader recurses; about 1,000 levels exhaust it.
        raise InvalidRequest([FieldError("", f"the body {nesting_message()}")]) from None
    # The middleware checked this already (api/app.py, BodyLimits); a body
    # read here is checked again, whatever its content type said.
    problem = structure_problem(data)
    if problem:
        raise InvalidRequest([FieldError("", f"the body {problem}")])
    return data
