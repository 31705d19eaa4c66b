"""The ``dispatcher`` command (CONTRACT §5): one module per command family."""

from dispatcher.cli import ops, tokens
from dispatcher.cli.base import cli, main

__all__ = ["cli", "main", "ops", "tokens"]
