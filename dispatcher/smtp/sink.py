"""A local mail sink: an SMTP server that keeps every message as an .eml file.

For trying the product without a mail server (``dispatcher up``) and for
tests. Each message is written atomically to ``<dir>/<time>-<n>.eml`` and
indexed in ``<dir>/index.jsonl`` with envelope, Message-ID and subject.
"""

from __future__ import annotations

import email.policy
import itertools
import json
import os
import threading
import time
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SinkHandler:
    """aiosmtpd handler that stores messages; subclasses may refuse some."""

    def __init__(self, directory: Path, *, pipelining: bool = True) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pipelining = pipelining
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd reads commands one line at a time, so commands sent
        # together are answered in order: it can offer PIPELINING (RFC 2920),
        # as Postfix and most relays do, though it does not say so itself.
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        return "250 2.0.0 OK: stored"

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        # Only the headers are needed for the index; parsing the whole message
        # would cost more than receiving it.
        parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(content)
        with self._lock:
            number = next(self._counter)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{number:06d}.eml"
            path = self.directory / name
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(content)
            temporary.replace(path)
            entry = {
                "file": name,
                "received_at": time.time(),
                "mail_from": mail_from,
                "rcpt_tos": rcpt_tos,
                "message_id": parsed.get("Message-ID"),
                "subject": str(parsed.get("Subject", "")),
                "from": str(parsed.get("From", "")),
                "to": str(parsed.get("To", "")),
            }
            with (self.directory / "index.jsonl").open("a", encoding="utf-8") as index:
                index.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return path


def read_index(directory: Path) -> list[dict[str, Any]]:
    """The messages a sink has stored, oldest first."""
    index = directory / "index.jsonl"
    if not index.exists():
        return []
    entries = []
    for line in index.read_text("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        # A line the sink is appending while we read may still be incomplete;
        # it is skipped now and read complete the next time.
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def start_sink(
    directory: Path, host: str = "127.0.0.1", port: int = 2525, handler: Any = None
) -> Controller:
    """Start a sink in a background thread; call ``.stop()`` on the result."""
    controller = Controller(
        handler or SinkHandler(directory),
        hostname=host,
        port=port,
        # Bodies of test and demo mails are small, but the limit is the
        # product's own (MAX_OUTPUT_CHARS) with room for the HTML layout.
        data_size_limit=2 * 1024 * 1024,
        ready_timeout=10,
    )
    controller.start()
    return controller
