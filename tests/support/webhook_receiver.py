"""A portal backend's webhook receiver in its own process, verifying every signature.

Run: python -m tests.support.webhook_receiver --port P --dir D --secret whsec_...

It answers 204 to a message whose Standard Webhooks signature verifies and
appends it to ``<dir>/received.jsonl``; 401 to one that does not. A file
``<dir>/down`` makes it answer 503 (a receiver that is down for a while).
It keeps connections open (HTTP/1.1), as a portal backend's web server does,
so that benchmarks do not count a TCP connection and a thread per webhook.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def serve(port: int, directory: Path, secret: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    verifier = Webhook(secret)
    lock = threading.Lock()

    received = (directory / "received.jsonl").open("a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if (directory / "down").exists():
                self._answer(503)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError:
                self._answer(401)
                return
            entry = {"webhook_id": headers["webhook-id"], "payload": payload}
            with lock:
                received.write(json.dumps(entry) + "\n")
                received.flush()
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            if status != 204:
                self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    (directory / "ready").write_text("ok", "utf-8")
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    serve(args.port, args.dir, args.secret)


if __name__ == "__main__":
    main()
