"""The admin HTTP API (CONTRACT §6) and the web UI, served by ``dispatcher api``."""

from __future__ import annotations

from dispatcher.api.app import create_app

__all__ = ["create_app"]
