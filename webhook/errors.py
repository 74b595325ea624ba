"""One JSON error shape for every error the API returns, and the exception → status mapping.

Every error body is ``{"error": {"status": int, "code": str, "message": str}}``. The tree::

    ApiError                      carries its HTTP status and a stable machine-readable code
    ├── Unauthorized              401 missing or wrong credentials / signature
    ├── Forbidden                 403 a logged-in browser request from another site (CSRF)
    ├── PayloadTooLarge           413 body over WEBHOOK_MAX_BODY_BYTES
    ├── UnsupportedMediaType      415 Content-Type is not JSON
    ├── InvalidPayload            422 not JSON, or not a valid notification (the message names the field)
    └── ServiceUnavailable        503 Redis or the store cannot take the work now (the sender should retry)

Third-party exceptions that reach a handler are mapped by :data:`EXCEPTION_STATUS`; anything unmapped is a 500
whose message never echoes the exception text (it may hold a URL with credentials). A browser (:func:`wants_html`)
is not shown the JSON of an error that says better: one with a ``browser_location`` (the login page) redirects a
GET there, one with a :meth:`ApiError.browser_page` shows that page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from reports.store import StoreError

log = logging.getLogger("webhook.errors")


class ApiError(Exception):
    status = 500
    code = "internal_error"
    # where a browser's GET goes instead of seeing this error (the login page); None: nowhere
    browser_location: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers

    def browser_page(self) -> Response | None:
        """The page a browser is shown instead of the JSON error; None: the JSON error."""
        return None


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class InvalidPayload(ApiError):
    status = 422
    code = "invalid_payload"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


# (status, code, message) for exceptions raised below the HTTP layer.
EXCEPTION_STATUS: dict[type[BaseException], tuple[int, str, str]] = {
    RedisError: (503, "queue_unavailable", "the job queue (Redis) is unavailable; retry later"),
    ConnectionError: (503, "queue_unavailable", "the job queue (Redis) is unavailable; retry later"),
    TimeoutError: (503, "queue_unavailable", "the job queue (Redis) did not answer in time; retry later"),
    StoreError: (503, "store_unavailable", "the report store is unavailable; retry later"),
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_payload",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=headers)


def map_exception(exc: BaseException) -> tuple[int, str, str]:
    """The (status, code, message) a non-API exception is answered with."""
    for kind, mapped in EXCEPTION_STATUS.items():
        if isinstance(exc, kind):
            return mapped
    return 500, "internal_error", "internal error; the server log has the details"


def wants_html(request: Request) -> bool:
    """True for browsers: the Accept header asks for text/html before (or instead of) JSON."""
    accept = request.headers.get("accept", "").lower()
    if "text/html" not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at == -1 or accept.find("text/html") < json_at


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if wants_html(request):
        if exc.browser_location is not None and request.method == "GET":
            return RedirectResponse(exc.browser_location, status_code=303, headers={"Cache-Control": "no-store"})
        page = exc.browser_page()
        if page is not None:
            return page
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(422, "invalid_request", f"{field}: {first.get('msg', 'invalid')}" if field else "invalid")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    status, code, message = map_exception(exc)
    if status >= 500 and status != 503:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    else:
        log.warning("dependency failure", extra={"path": request.url.path, "error_type": type(exc).__name__})
    return error_response(status, code, message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
