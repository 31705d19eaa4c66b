"""An SMTP sink in its own process, with faults injected from a JSON file.

Run: python -m tests.support.smtp_sink --port P --dir D [--faults F]

The faults file is read for every command, so a test can change behaviour
while the sink runs. It holds a list of rules:

    {"match": "fail451@", "stage": "rcpt", "code": 451, "times": 1}
    {"match": "bounce@", "stage": "data", "code": 550, "text": "no such user"}
    {"match": "drop@", "stage": "after_data", "action": "drop", "times": 1}
    {"match": "hang@", "stage": "data", "action": "hang", "seconds": 60}
    {"match": "cut@", "stage": "mid_data", "action": "drop", "times": 1}

Stage ``mid_data`` hangs up while the message is still being received.

``match`` is a substring of the recipient address; ``times`` (optional) limits
how often the rule applies. Counters live in the sink process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from dispatcher.smtp.sink import SinkHandler


class FaultySinkHandler(SinkHandler):
    def __init__(self, directory: Path, faults: Path | None, *, pipelining: bool = True) -> None:
        super().__init__(directory, pipelining=pipelining)
        self.faults = faults
        self.used: dict[str, int] = {}
        self.lock = threading.Lock()

    def _rule(self, stage: str, recipients: list[str]) -> dict[str, Any] | None:
        if self.faults is None or not self.faults.exists():
            return None
        try:
            rules = json.loads(self.faults.read_text("utf-8") or "[]")
        except json.JSONDecodeError:
            return None
        for rule in rules:
            if rule.get("stage") != stage:
                continue
            if not any(rule.get("match", "") in r for r in recipients):
                continue
            # Counted per rule text, so a test that installs new rules starts
            # afresh; "per_recipient" counts each address on its own.
            key = json.dumps(rule, sort_keys=True)
            if rule.get("per_recipient"):
                key += "|" + ",".join(sorted(recipients))
            with self.lock:
                used = self.used.get(key, 0)
                if "times" in rule and used >= rule["times"]:
                    continue
                self.used[key] = used + 1
            return dict(rule)
        return None

    async def _act(self, rule: dict[str, Any], server: Any) -> str | None:
        action = rule.get("action")
        if action == "hang":
            await asyncio.sleep(float(rule.get("seconds", 60)))
            return "250 OK (late)"
        if action == "drop":
            server.transport.close()
            return "250 OK (never seen)"
        return f"{rule['code']} {rule.get('text', 'injected failure')}"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        rule = self._rule("rcpt", [address])
        if rule:
            reply = await self._act(rule, server)
            if reply and not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rule = self._rule("data", envelope.rcpt_tos)
        if rule:
            reply = await self._act(rule, server)
            if reply and not reply.startswith("250"):
                return reply
        after = self._rule("after_data", envelope.rcpt_tos)
        if after:
            # Store it, then vanish before replying: the client cannot know.
            self.store(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            server.transport.close()
            return "250 OK (never seen)"
        return await super().handle_DATA(server, session, envelope)


class FaultySMTP(SMTP):
    """Can hang up in the middle of DATA, which a handler cannot."""

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        if self.envelope is not None and isinstance(handler, FaultySinkHandler):
            rule = handler._rule("mid_data", list(self.envelope.rcpt_tos))
            if rule:
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                await self._reader.readuntil(b"\r\n")
                assert self.transport is not None
                self.transport.close()
                return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self) -> SMTP:
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--faults", type=Path, default=None)
    parser.add_argument("--no-pipelining", action="store_true", help="do not offer PIPELINING")
    args = parser.parse_args()
    handler = FaultySinkHandler(args.dir, args.faults, pipelining=not args.no_pipelining)
    controller = FaultyController(
        handler,
        hostname=args.host,
        port=args.port,
        data_size_limit=2 * 1024 * 1024,
        ready_timeout=10,
    )
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    (args.dir / "ready").write_text("ok")
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
