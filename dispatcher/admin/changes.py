"""What a settings save changed: the leaves of two documents, compared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config_store.repository import flatten


@dataclass(frozen=True)
class Change:
    """One field of a settings document, before and after (None: absent)."""

    path: str
    old: Any
    new: Any


def document_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """Every changed leaf of two documents, by dotted path, in the documents' order."""
    before = flatten(old or {})
    after = flatten(new)
    # Canonical documents are in contract order (the help page's), and so is
    # their flattening: new fields first in that order, then removed ones.
    paths = list(after) + [path for path in before if path not in after]
    return [
        Change(path, before.get(path), after.get(path))
        for path in paths
        if before.get(path) != after.get(path)
    ]
