"""The admin HTTP API (CONTRACT §6) and the web UI, served by ``dispatcher api``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dispatcher.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported only by those who serve the API, not by the
    # HTTP-free admin logic in this package.
    if name == "create_app":
        from dispatcher.api.app import create_app

        return create_app
    raise AttributeError(name)
