"""Operations commands: running everything on one machine, checks, retention."""

from __future__ import annotations

from dispatcher.cli import cli  # noqa: F401
