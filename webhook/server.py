"""The HTTP server's guard against stalled and piled-up connections, as a uvicorn protocol.

uvicorn closes idle keep-alive connections but has no timeout for reading a request: a client that sends half a
header (or half a body) and stops keeps its connection, a file handle and its buffers forever, and 3,000 of them
exhaust the process. :class:`GuardedProtocol` is uvicorn's httptools protocol (the one it picks by default) with
two limits from the settings:

* ``API_REQUEST_READ_TIMEOUT_S``: from the moment a connection opens (or its previous response is complete) the
  client has this long to send a whole request, headers and body; otherwise the connection is closed. The clock
  stops once the request is read, so a slow handler or a long streamed answer is never cut.
* ``API_MAX_CONNECTIONS``: a connection beyond this many open ones is closed as soon as it is accepted.

uvicorn loads it by name (``http="webhook.server:GuardedProtocol"``, see ``sre-triage serve``), and it reads the
limits from the environment on first use, as the app factory does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from triage.settings import load_settings

PROTOCOL = "webhook.server:GuardedProtocol"
log = logging.getLogger("webhook.server")

# An attack closes thousands of connections: say so once per interval, with the count, not once per connection.
LOG_INTERVAL_S = 60.0


@functools.cache
def limits() -> tuple[float, int]:
    """(request read timeout in seconds, maximum open connections), from the settings."""
    api = load_settings().api
    return api.api_request_read_timeout_s, api.api_max_connections


class _Closures:
    """Counts connections closed by a limit and logs a summary at most once per :data:`LOG_INTERVAL_S`."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.logged_at = 0.0

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_INTERVAL_S:
            log.warning("connections closed by a server limit", extra={"closed": dict(self.counts)})
            self.counts.clear()
            self.logged_at = now


CLOSURES = _Closures()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (what it picks by default) with a request read timeout and a connection cap."""

    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        read_timeout_s, max_connections = limits()
        if len(self.connections) > max_connections:
            CLOSURES.add("too_many_connections")
            transport.close()
            return
        self._arm_read_timer(read_timeout_s)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_read_timer()  # the whole request is in: from here on it is the handler's time

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request on this keep-alive connection gets the same time, unless it was already read whole
        if not self.transport.is_closing() and not any(not cycle.more_body for cycle, _ in self.pipeline):
            self._arm_read_timer(limits()[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def _arm_read_timer(self, timeout_s: float) -> None:
        self._cancel_read_timer()
        self._read_timer = self.loop.call_later(timeout_s, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            return  # the handler is answering (a refusal sent before the body was read): let it finish
        CLOSURES.add("request_read_timeout")
        self.transport.close()
