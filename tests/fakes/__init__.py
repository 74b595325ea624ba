"""In-process fakes of the data sources, reproducing their documented wire formats, auth checks and error bodies.

Each fake holds the world's state and serves it through ``handler``, an ``httpx.MockTransport`` handler::

    from tests.fakes.grafana import FakeGrafana

    grafana = FakeGrafana(token="glsa_test")
    grafana.add_dashboard("node", "Node exporter")
    async with grafana.client() as client:           # a GrafanaClient wired to the fake
        annotation_id = await client.create_annotation("report", ["sre-triage"], time_ms=1_700_000_000_000)
    assert grafana.annotations[annotation_id]["text"] == "report"

Fault injection is shared by every fake (see :class:`FakeUpstream`): ``delay_s`` slows every answer,
``fail_next(2, status=503)`` makes the next two requests fail before the fake answers normally again, and
``requests``/``request_count`` record what the client sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Fault:
    """One forced failure: an HTTP status with a body, or a transport error raised instead of an answer."""

    status: int = 503
    body: str = ""
    exception: Exception | None = None
    path_prefix: str | None = None


def json_response(status: int, body: Any, *, reason: str | None = None) -> httpx.Response:
    """A JSON answer; ``reason`` sets the HTTP status text (PVE puts its error message there)."""
    extensions = {"reason_phrase": reason.encode()} if reason else {}
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json;charset=UTF-8"},
        extensions=extensions,
    )


class FakeUpstream:
    """What every fake shares: request log, per-request delay and forced failures."""

    #: the body a forced failure sends when none is given
    default_fault_body = "Service Unavailable"

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[httpx.Request] = []
        self._faults: deque[Fault] = deque()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def paths(self) -> list[str]:
        """The paths requested so far, in order (no query strings)."""
        return [r.url.path for r in self.requests]

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        body: str | None = None,
        exception: Exception | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Make the next ``count`` requests (those under ``path_prefix`` when given) fail, then answer normally.

        ``exception`` (e.g. ``httpx.ConnectError("refused")``) is raised instead of answering with ``status``.
        """
        fault = Fault(status, self.default_fault_body if body is None else body, exception, path_prefix)
        self._faults.extend([fault] * count)

    def transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` serving this fake."""
        return httpx.MockTransport(self.handler)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        """Entry point for ``httpx.MockTransport``: log, delay, inject faults, then answer."""
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        fault = self._take_fault(request.url.path)
        if fault is not None:
            if fault.exception is not None:
                raise fault.exception
            return httpx.Response(fault.status, text=fault.body, headers={"content-type": "text/plain"})
        return self.respond(request)

    def _take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                del self._faults[index]
                return fault
        return None

    def respond(self, request: httpx.Request) -> httpx.Response:
        """Answer one request from the fake's state; subclasses implement the API."""
        raise NotImplementedError


def raw_path(request: httpx.Request) -> str:
    """The path as sent, still percent-encoded: an encoded ``/`` inside a segment stays part of that segment."""
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


def read_json(request: httpx.Request) -> Any:
    """The request's JSON body, or None when it is absent or not JSON."""
    try:
        return json.loads(request.content or b"null")
    except ValueError:
        return None
