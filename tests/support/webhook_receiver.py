"""A portal backend's webhook receiver in its own process, verifying every signature.

Run: python -m tests.support.webhook_receiver --port P --dir D --secret whsec_...

It answers 204 to a message whose Standard Webhooks signature verifies and
appends it to ``<dir>/received.jsonl``; 401 to one that does not. A file
``<dir>/down`` makes it answer 503 (a receiver that is down for a while).
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

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if (directory / "down").exists():
                self.send_response(503)
                self.end_headers()
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError:
                self.send_response(401)
                self.end_headers()
                return
            entry = {"webhook_id": headers["webhook-id"], "payload": payload}
            with lock, (directory / "received.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(204)
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
