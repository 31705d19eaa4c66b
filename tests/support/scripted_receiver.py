"""An HTTP receiver in a thread of the test, answering as the test scripts it.

Unit tests of the webhook sender use it where a real receiver process
(tests/support/webhook_receiver.py) would make it hard to choose each answer.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]
    content: bytes
    # The request line's target: a path, or the whole URL when it came to a proxy.
    target: str


@dataclass(frozen=True)
class Scripted:
    url: str


@contextmanager
def scripted_receiver(
    respond: Callable[[Request], int], tls: tuple[Path, Path] | None = None
) -> Iterator[Scripted]:
    """Serve POSTs on a free loopback port; ``respond`` gives each one's status.

    With ``tls`` (certificate, key) it speaks HTTPS as localhost.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = respond(Request(headers, body, self.path))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme, host = "http", "127.0.0.1"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme, host = "https", "localhost"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Scripted(f"{scheme}://{host}:{server.server_address[1]}/hooks")
    finally:
        server.shutdown()
        server.server_close()
