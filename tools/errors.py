"""Errors raised by the data-source clients.

Every client translates third-party failures at its boundary, so callers only ever see this tree::

    SourceError                      any failure talking to a data source
    ├── SourceUnavailable            the source could not be reached (transient: retried)
    │   ├── SourceConnectError       connection refused or reset, TLS handshake
    │   │   └── SourceDNSError       the host name does not resolve
    │   └── SourceTimeout            connect/read/write/pool timeout
    ├── SourceHTTPError              the source answered with a non-2xx status (.status_code, .body_excerpt)
    │   ├── SourceAuthError          401/403: the credentials are wrong or lack a permission
    │   ├── SourceNotFound           404
    │   ├── SourceRateLimited        429 (transient: retried)
    │   └── SourceServerError        5xx (502/503/504 transient: retried)
    ├── SourceProtocolError          the answer is not what the API documents
    │   └── SourceMalformedResponse  not JSON, or JSON of the wrong shape
    ├── SourceQueryError             the source rejected the query (`"status": "error"`, bad PromQL/LogQL)
    └── SourceRequestError           any other transport failure (too many redirects, bad URL, decoding)

Messages name the source and the URL (without query-string secrets) and never a token.
"""

from __future__ import annotations


class SourceError(Exception):
    """A data source failed. ``source`` names it (``prometheus``, ``loki`` …); ``url`` is the request URL."""

    transient = False

    def __init__(self, message: str, *, source: str, url: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.source}: {self.args[0]}{where}"


class SourceUnavailable(SourceError):
    transient = True


class SourceConnectError(SourceUnavailable):
    pass


class SourceDNSError(SourceConnectError):
    """The source's host name does not resolve (a typo in the URL, or the resolver is down)."""


class SourceTimeout(SourceUnavailable):
    pass


class SourceHTTPError(SourceError):
    # seconds from a Retry-After header, when the source sent one
    retry_after_s: float | None = None

    def __init__(self, message: str, *, source: str, url: str = "", status_code: int, body_excerpt: str = "") -> None:
        super().__init__(message, source=source, url=url)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class SourceAuthError(SourceHTTPError):
    pass


class SourceNotFound(SourceHTTPError):
    pass


class SourceRateLimited(SourceHTTPError):
    transient = True


class SourceServerError(SourceHTTPError):
    def __init__(self, message: str, *, source: str, url: str = "", status_code: int, body_excerpt: str = "") -> None:
        super().__init__(message, source=source, url=url, status_code=status_code, body_excerpt=body_excerpt)
        self.transient = status_code in (502, 503, 504)


class SourceProtocolError(SourceError):
    pass


class SourceMalformedResponse(SourceProtocolError):
    pass


class SourceQueryError(SourceError):
    pass


class SourceRequestError(SourceError):
    pass
