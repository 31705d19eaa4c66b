"""A built message as the bytes that go on the wire (and that DKIM signs)."""

from __future__ import annotations

from email.message import Message
from email.policy import compat32

# CRLF line ends; headers arrive folded already (``render.build_message``),
# so the generator only joins them.
WIRE = compat32.clone(linesep="\r\n")


def to_bytes(message: Message) -> bytes:
    return message.as_bytes(policy=WIRE)
