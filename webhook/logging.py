"""Access log of the API as JSON lines (formatting and secret redaction live in :mod:`triage.json_logs`).

One line per request with method, path, status and duration. Query strings are left out: a client may put a
token there.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("webhook.access")

# Probes hit these every few seconds; logging them would drown the useful lines.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# webhook.intake writes one line per notification itself, with its outcome, job ids and duration
SELF_LOGGING_PREFIXES = ("/webhook/",)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in QUIET_PATHS
            or path.startswith(SELF_LOGGING_PREFIXES)
            or not log.isEnabledFor(logging.INFO)
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
