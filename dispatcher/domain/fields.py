"""Reusable field types for events and settings, each with a fix-it message."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from dispatcher.domain.addresses import parse_mailbox
from dispatcher.domain.locales import locale_problem
from dispatcher.domain.textsafety import first_forbidden, single_line_problem

GROUP_CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_URL_LENGTH = 2048


def check_group_code(code: str) -> str:
    if not GROUP_CODE_PATTERN.fullmatch(code):
        raise ValueError(
            f"{code[:70]!r} is not a valid group code; use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return code


def fold_group_code(code: str) -> str:
    """The form in which group codes are compared: ``RETAIL`` is ``retail``.

    Codes are ASCII, so this equals SQL's ``lower()`` (migration 0005).
    """
    return code.casefold()


def _single_line(value: str) -> str:
    problem = single_line_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _identifier(value: str) -> str:
    bad = first_forbidden(value)
    if bad:
        raise ValueError(f"contains the control character {bad}; remove it")
    if value != value.strip():
        raise ValueError("has spaces at the start or end; remove them")
    return value


def _email(value: str) -> str:
    parse_mailbox(value)  # AddressProblem is a ValueError with the fix in its text.
    return value


def _locale(value: str) -> str:
    problem = locale_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _url(value: str) -> str:
    bad = first_forbidden(value)
    if bad or " " in value:
        raise ValueError("must be a URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{value[:60]!r} is not an http(s) URL; write it as https://host/path")
    return value


def _timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value[:40]!r} is not an RFC 3339 timestamp; write it as 2026-11-27T14:30:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value[:40]!r} has no time zone; add one, e.g. Z or +01:00")
    return value


ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
Identifier = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_identifier)]
GroupCode = Annotated[str, AfterValidator(check_group_code)]
EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_email)]
LocaleTag = Annotated[str, Field(max_length=35), AfterValidator(_locale)]
HttpUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(_url)]
Timestamp = Annotated[str, Field(max_length=64), AfterValidator(_timestamp)]
