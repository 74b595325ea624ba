"""Real loopback receivers for notification tests: an HTTP server (ntfy, a generic JSON webhook) and an SMTP server.

Both record exactly what arrived, so tests check the bytes a user's service would get. The HTTP receiver can be
told to answer the next requests with an error status (a service outage).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records every request; answers 200, or ``fail_status`` while ``fail_count`` lasts."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    fail_count: int = 0
    fail_status: int = 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self.fail_count, self.fail_status = count, status

    def _answer(self) -> int:
        with self.lock:
            if self.fail_count > 0:
                self.fail_count -= 1
                return self.fail_status
            return 200

    @property
    def hostport(self) -> str:
        return self.url.removeprefix("http://")


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
            status = receiver._answer()
            payload = b'{"ok": true}' if status == 200 else b'{"error": "unavailable"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """A running HTTP receiver on a free loopback port."""
    receiver = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SmtpReceiver:
    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append(Mail(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], content))
        return "250 OK"


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """A running aiosmtpd server on a free loopback port (no TLS, no auth: mode=insecure in the mailto URL)."""
    # aiosmtpd checks its server by connecting to the configured port, so port 0 cannot be used: take a free one
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    receiver = SmtpReceiver("127.0.0.1", port)
    controller = Controller(receiver, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
