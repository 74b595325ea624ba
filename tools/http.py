"""The HTTP base shared by every data-source client.

One long-lived ``httpx.AsyncClient`` per source, explicit constructor arguments (never the settings object),
bounded retries with jittered backoff for transient failures, and translation of every httpx error into the
``tools.errors`` tree. Per-client counters (requests, bytes) let callers measure the load one alert puts on a source.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypedDict
from urllib.parse import urlsplit, urlunsplit

import httpx

from tools.backoff import backoff_delay_s
from tools.credentials import basic_credential, credential_forms, split_userinfo, url_secret_forms
from tools.errors import (
    SourceAuthError,
    SourceConnectError,
    SourceDNSError,
    SourceError,
    SourceHTTPError,
    SourceMalformedResponse,
    SourceNotFound,
    SourceRateLimited,
    SourceRequestError,
    SourceServerError,
    SourceTimeout,
)
from tools.numbers import ascii_int

BODY_EXCERPT_CHARS = 300
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.2
# each retry waits its backoff ±50 %, so clients that failed together do not retry together
RETRY_JITTER = 0.5
MAX_RETRY_AFTER_S = 5.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass
class RequestStats:
    """What a client has sent and received since it was created (or last reset)."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    by_path: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        """Zero the counters, e.g. before measuring one alert."""
        self.requests = self.retries = self.bytes_sent = self.bytes_received = 0
        self.by_path.clear()


class ClientOptions(TypedDict, total=False):
    """The connection options every client accepts and hands to :class:`SourceClient` unchanged."""

    timeout_s: float
    verify: bool
    ca_file: str | None
    retries: int
    backoff_s: float
    transport: httpx.AsyncBaseTransport | None


def auth_headers(token: str | None = None, username: str | None = None, password: str | None = None) -> dict[str, str]:
    """An ``Authorization`` header: Bearer when ``token`` is set, else Basic when both username and password are."""
    if token:
        return {"Authorization": f"Bearer {token}"}
    if username and password:
        return {"Authorization": f"Basic {basic_credential(username, password)}"}
    return {}


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _not_acted_on(error: SourceError) -> bool:
    """Whether a failed request certainly did nothing at the source, so even a POST may be sent again."""
    if isinstance(error, SourceHTTPError):
        return error.status_code in (429, 503)
    cause = error.__cause__
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _retry_after_s(error: SourceError) -> float:
    """Honour a 429/503 ``Retry-After`` in seconds, capped so one alert never waits long on a busy source."""
    seconds = error.retry_after_s if isinstance(error, SourceHTTPError) else None
    return min(seconds, MAX_RETRY_AFTER_S) if seconds else 0.0


def tls_verify(verify: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    """Build httpx's ``verify`` argument: on by default, a CA bundle file when given, off only on request."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return verify


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _connect_error(exc: httpx.HTTPError, source: str, url: str) -> SourceError:
    if _caused_by(exc, socket.gaierror) is not None or "Name or service not known" in str(exc):
        return SourceDNSError("host name does not resolve", source=source, url=url)
    if _caused_by(exc, ssl.SSLError) is not None:
        error = SourceConnectError(f"TLS handshake failed: {exc}", source=source, url=url)
        # a certificate that does not verify will not verify on the next attempt either
        error.transient = False
        return error
    reason = str(exc) or type(exc).__name__
    return SourceConnectError(f"cannot connect: {reason}", source=source, url=url)


# Every httpx exception class, mapped deliberately. tests/test_http_errors.py fails when httpx grows a class that
# is not listed here, so a new failure mode is a decision rather than a silent fallback.
HTTPX_ERRORS: dict[type[httpx.HTTPError], type[SourceError]] = {
    httpx.HTTPError: SourceRequestError,
    httpx.RequestError: SourceRequestError,
    httpx.TransportError: SourceRequestError,
    httpx.TimeoutException: SourceTimeout,
    httpx.ConnectTimeout: SourceTimeout,
    httpx.ReadTimeout: SourceTimeout,
    httpx.WriteTimeout: SourceTimeout,
    httpx.PoolTimeout: SourceTimeout,
    httpx.NetworkError: SourceConnectError,
    httpx.ConnectError: SourceConnectError,
    httpx.ReadError: SourceConnectError,
    httpx.WriteError: SourceConnectError,
    httpx.CloseError: SourceConnectError,
    httpx.ProxyError: SourceConnectError,
    # the server dropped the connection or spoke broken HTTP: usually a restart in progress, so transient
    httpx.RemoteProtocolError: SourceConnectError,
    httpx.ProtocolError: SourceRequestError,
    httpx.LocalProtocolError: SourceRequestError,
    httpx.UnsupportedProtocol: SourceRequestError,
    httpx.DecodingError: SourceMalformedResponse,
    httpx.TooManyRedirects: SourceRequestError,
    httpx.HTTPStatusError: SourceHTTPError,
}


def map_transport_error(exc: httpx.HTTPError, *, source: str, url: str) -> SourceError:
    """Translate an httpx exception into the ``tools.errors`` tree, following :data:`HTTPX_ERRORS`.

    Connection failures are split further: a name that does not resolve becomes SourceDNSError, a failed TLS
    handshake a non-transient SourceConnectError.
    """
    if isinstance(exc, httpx.HTTPStatusError):
        return map_status(exc.response, source=source, url=url)
    target = next((HTTPX_ERRORS[k] for k in type(exc).__mro__ if k in HTTPX_ERRORS), SourceRequestError)
    name = type(exc).__name__
    if target is SourceTimeout:
        return SourceTimeout(f"timed out ({name})", source=source, url=url)
    if isinstance(exc, httpx.ConnectError):
        return _connect_error(exc, source, url)
    if target is SourceConnectError:
        return SourceConnectError(f"connection failed ({name}): {exc}", source=source, url=url)
    if target is SourceMalformedResponse:
        return SourceMalformedResponse("could not decode the response body", source=source, url=url)
    return SourceRequestError(f"request failed ({name}): {exc}", source=source, url=url)


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
    error: SourceHTTPError
    if status == 429:
        error = SourceRateLimited(message, **kwargs)
    elif status >= 500:
        error = SourceServerError(message, **kwargs)
    else:
        return SourceHTTPError(message, **kwargs)
    retry_after = response.headers.get("retry-after", "")
    seconds = ascii_int(retry_after, max_digits=9)
    if seconds is not None:
        error.retry_after_s = seconds
    return error


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
        secrets: Sequence[str] = (),
    ) -> None:
        # credentials written into the URL become a Basic header (what httpx would send for them, overriding any
        # other Authorization), so the URL itself can be shown, and every form of them is masked
        self.base_url, user, password = split_userinfo(base_url.rstrip("/"))
        headers = dict(headers or {})
        if user is not None or password is not None:
            headers["Authorization"] = "Basic " + basic_credential(user or "", password or "")
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.stats = RequestStats()
        self._secrets = credential_forms([*headers.values(), *secrets, *url_secret_forms(base_url)])
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=tls_verify(verify, ca_file),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool; call once at shutdown."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def display_url(self) -> str:
        """The base URL as it may appear in messages: without user:password."""
        return strip_userinfo(self.base_url)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _upstream_error(self, response: httpx.Response, url: str) -> SourceError | None:
        """Hook: turn a non-2xx answer that carries the API's own error document into a specific error.

        Returns None to fall back to the HTTP status mapping. Prometheus and Loki override this to raise
        SourceQueryError for a rejected query instead of a bare HTTP 400.
        """
        return None

    def _scrub(self, error: SourceError) -> SourceError:
        error.args = (self._redact(str(error.args[0])),)
        error.url = self._redact(strip_userinfo(error.url))
        if isinstance(error, SourceHTTPError):
            error.body_excerpt = self._redact(error.body_excerpt)
        return error

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request with bounded, jittered retries on transient failures; return the 2xx response.

        ``idempotent`` defaults to what the method promises (GET, HEAD, PUT, DELETE, OPTIONS). A request that is
        not idempotent (a POST creating an annotation) is retried only when the source cannot have acted on it:
        it was never connected, or it was refused with 429/503. Pass ``idempotent=True`` for read-only POSTs.
        """
        url = f"{self.display_url}{path}"
        safe = idempotent if idempotent is not None else method.upper() in IDEMPOTENT_METHODS
        attempt = 0
        while True:
            try:
                response = await self._client.request(
                    method, path, params=params, json=json_body, data=data, headers=headers
                )
            except httpx.HTTPError as exc:
                error: SourceError = map_transport_error(exc, source=self.source, url=url)
                error.__cause__ = exc
            else:
                self._count(path, response)
                if response.is_success:
                    return response
                error = self._upstream_error(response, url) or map_status(response, source=self.source, url=url)
            error = self._scrub(error)
            if not error.transient or attempt >= self.retries or not (safe or _not_acted_on(error)):
                raise error
            attempt += 1
            self.stats.retries += 1
            delay = backoff_delay_s(attempt, first_s=self.backoff_s, jitter=RETRY_JITTER)
            await asyncio.sleep(max(delay, _retry_after_s(error)))

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
            raise self._scrub(
                SourceMalformedResponse(
                    f"response is not JSON: {response.text[:80]!r}",
                    source=self.source,
                    url=f"{self.display_url}{path}",
                )
            ) from exc

    async def get_json(self, path: str, *, params: Any = None) -> Any:
        """GET ``path`` and return the parsed JSON body."""
        return await self.request_json("GET", path, params=params)
