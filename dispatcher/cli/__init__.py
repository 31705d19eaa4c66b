"""The ``dispatcher`` command (CONTRACT §5): one module per command family.

Each module registers its commands on the group in ``dispatcher.cli.base``
and calls the use cases in ``dispatcher.admin``, as the HTTP API does.
"""

from dispatcher.cli import (
    bounces,
    deliveries,
    events,
    feedback,
    groups,
    ops,
    relays,
    serve,
    settings,
    tokens,
)
from dispatcher.cli.base import cli, main

__all__ = [
    "bounces",
    "cli",
    "deliveries",
    "events",
    "feedback",
    "groups",
    "main",
    "ops",
    "relays",
    "serve",
    "settings",
    "tokens",
]
