"""Turn pydantic's validation errors into our one-line, fix-it field errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dispatcher.errors import FieldError

_TYPE_NAMES = {
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
}


def join_path(parts: Iterable[object]) -> str:
    return ".".join(str(part) for part in parts)


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for a close match, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """Follow ``loc`` through nested models and mappings to the model it lands in."""
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
        current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap_optional(annotation: Any) -> Any:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is not dict and len(args) == 1 and type(None) in get_args(annotation):
        return args[0]
    return annotation


def _message(root: type[BaseModel], error: ErrorDetails, root_label: str) -> tuple[str, str]:
    loc = list(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(root, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        where = join_path(loc[:-1]) or root_label
        hint = suggest(key, allowed) or (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        return join_path(loc), f"unknown key {key!r} in {where}{hint}"
    if kind == "missing":
        return join_path(loc), "is required; add it"
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    if kind in _TYPE_NAMES:
        return join_path(loc), f"{_TYPE_NAMES[kind]}, not {_describe(error.get('input'))}"
    if kind in {"string_too_long", "too_long"}:
        limit = (error.get("ctx") or {}).get("max_length")
        return join_path(loc), f"is too long; use at most {limit} characters"
    if kind == "string_too_short":
        return join_path(loc), "must not be empty"
    # Our own validators raise ValueError with a complete sentence; pydantic
    # prefixes it with "Value error, ", which adds nothing for a reader.
    message = error["msg"].removeprefix("Value error, ")
    return join_path(loc), message


def _describe(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"the text {shown!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def field_errors(
    root: type[BaseModel],
    exc: ValidationError,
    prefix: Sequence[str] = (),
    root_label: str = "the document",
) -> list[FieldError]:
    """Every error of ``exc`` as a ``FieldError``, sorted by path, without repeats."""
    seen: dict[tuple[str, str], None] = {}
    for error in exc.errors(include_url=False):
        path, message = _message(root, error, root_label)
        full = join_path([*prefix, path]) if path else join_path(prefix)
        seen[(full, message)] = None
    return [FieldError(path, message) for path, message in seen]
