"""The HTTP base shared by every data-source client.

One long-lived ``httpx.AsyncClient`` per source, explicit constructor arguments (never the settings object),
bounded retries with jittered backoff for transient failures, and translation of every httpx error into the
``tools.errors`` tree. Per-client counters (requests, bytes) let callers measure the load one alert puts on a source.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.errors import (
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceHTTPError,
    SourceMalformedResponse,
    SourceNotFound,
    SourceRateLimited,
    SourceRequestError,
    SourceServerError,
    SourceTimeout,
)

BODY_EXCERPT_CHARS = 300
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.2


@dataclass
class RequestStats:
    """What a client has sent and received since it was created (or last reset)."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    by_path: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.requests = self.retries = self.bytes_sent = self.bytes_received = 0
        self.by_path.clear()


def tls_verify(verify: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    """Build httpx's ``verify`` argument: on by default, a CA bundle file when given, off only on request."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return verify


def map_transport_error(exc: httpx.HTTPError, *, source: str, url: str) -> SourceError:
    """Translate an httpx exception into the ``tools.errors`` tree. Unknown types fall back to SourceRequestError."""
    if isinstance(exc, httpx.TimeoutException):
        return SourceTimeout(f"timed out ({type(exc).__name__})", source=source, url=url)
    if isinstance(exc, httpx.ConnectError | httpx.NetworkError):
        reason = str(exc) or type(exc).__name__
        return SourceConnectError(f"cannot connect: {reason}", source=source, url=url)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError | httpx.ProxyError):
        return SourceConnectError(f"protocol error: {type(exc).__name__}", source=source, url=url)
    if isinstance(exc, httpx.DecodingError):
        return SourceMalformedResponse("could not decode the response body", source=source, url=url)
    return SourceRequestError(f"request failed: {type(exc).__name__}", source=source, url=url)


def map_status(response: httpx.Response, *, source: str, url: str) -> SourceHTTPError:
    """Translate a non-2xx response into an error carrying the status and a bounded excerpt of the body."""
    status = response.status_code
    excerpt = response.text[:BODY_EXCERPT_CHARS]
    message = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    kwargs: dict[str, Any] = {"source": source, "url": url, "status_code": status, "body_excerpt": excerpt}
    if status in (401, 403):
        return SourceAuthError(f"HTTP {status}: credentials rejected", **kwargs)
    if status == 404:
        return SourceNotFound(message, **kwargs)
    if status == 429:
        return SourceRateLimited(message, **kwargs)
    if status >= 500:
        return SourceServerError(message, **kwargs)
    return SourceHTTPError(message, **kwargs)


class SourceClient:
    """Base class: owns the httpx client, retries, error mapping and request counters.

    Subclasses set ``source`` and call :meth:`get_json` / :meth:`request_json`.
    """

    source = "http"

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        verify: bool = True,
        ca_file: str | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.stats = RequestStats()
        self._secrets = [v for v in (headers or {}).values() if v]
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=tls_verify(verify, ca_file),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> SourceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request with bounded, jittered retries on transient failures; return the 2xx response."""
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                response = await self._client.request(
                    method, path, params=params, json=json_body, data=data, headers=headers
                )
            except httpx.HTTPError as exc:
                error: SourceError = map_transport_error(exc, source=self.source, url=url)
            else:
                self._count(path, response)
                if response.is_success:
                    return response
                error = map_status(response, source=self.source, url=url)
            error.args = (self._redact(str(error.args[0])),)
            if not error.transient or attempt >= self.retries:
                raise error
            attempt += 1
            self.stats.retries += 1
            delay = self.backoff_s * (2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + random.random()))

    def _count(self, path: str, response: httpx.Response) -> None:
        self.stats.requests += 1
        self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        request = response.request
        self.stats.bytes_sent += len(str(request.url)) + len(request.content or b"")
        self.stats.bytes_received += len(response.content)

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and parse the JSON body; a body that is not JSON raises SourceMalformedResponse."""
        response = await self.request(method, path, **kwargs)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceMalformedResponse(
                f"response is not JSON: {response.text[:80]!r}",
                source=self.source,
                url=str(response.request.url),
            ) from exc

    async def get_json(self, path: str, *, params: Any = None) -> Any:
        return await self.request_json("GET", path, params=params)
