"""API access for scripts and browsers: ``Authorization: Bearer $API_TOKEN``, or the login cookie ``/login`` sets.

The cookie never holds the token. Its value is ``<expiry>.<signature>``, an HMAC-SHA256 over the expiry with a
key derived from API_TOKEN, so rotating the token logs every browser out. It is ``HttpOnly`` (scripts cannot read
it), ``SameSite=Lax`` (other sites' forms and scripts do not get it sent; a link from Grafana or a chat message
still opens a page logged in), ``Secure`` when PUBLIC_URL is https, and lives ``SESSION_TTL_S``.

Cross-site request forgery: a state-changing request (anything but GET/HEAD/OPTIONS) authenticated by the cookie
must come from our own origin: its ``Origin`` header (or, when a browser sends none, its ``Referer``) must be
PUBLIC_URL's origin or the origin the request was addressed to. A bearer request is not checked; no browser
adds that header on its own.

Every protected route takes its access as a FastAPI dependency: :func:`api_access` (``/ask``, the chat page's API)
or :func:`page_access` (the report list and the digest; one report, which also opens with a signed link, builds on
:func:`logged_in` in :mod:`webhook.reports_routes`). Without credentials a browser's GET is redirected to
``/login?next=…`` and an API client gets a JSON 401 with the bearer challenge. The two differ in how a refusal
reads — a refused page (:class:`PageRefused`) shows a browser an HTML error page with the pages' headers and names
the bearer token in its message — and in the cross-site check, which only :func:`api_access` needs (the pages are
read-only).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from reports.render import PAGE_HEADERS, render_error_html
from triage.agent.sessions import owner_identity
from triage.settings import Settings
from webhook.bearer import BEARER_CHALLENGE, bearer_token, secret_equal
from webhook.errors import ApiError, Forbidden, ServiceUnavailable, Unauthorized, wants_html

COOKIE_NAME = "sre_triage_session"
KEY_CONTEXT = b"sre-triage browser sessions v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE_CHARS = 100
MISSING_BEARER = "missing bearer token (Authorization: Bearer $API_TOKEN)"
INVALID_BEARER = "invalid bearer token"
PAGE_ERROR_TITLES = {401: "Not authorised", 503: "Unavailable"}


class LoginRequired(Unauthorized):
    """No credentials: a JSON 401 for API clients, a redirect to the login page for browsers."""

    def __init__(self, message: str, *, next_path: str) -> None:
        super().__init__(message, headers=BEARER_CHALLENGE)
        self.browser_location = login_location(next_path)


class PageRefused(ApiError):
    """A refused report page or digest: the JSON error for API clients; a browser is sent to the login page, returning
    to ``login_next`` afterwards (given when the request had no credentials and logins are enabled), or shown an
    HTML error page."""

    def __init__(
        self, status: int, code: str, message: str, *, challenge: bool = False, login_next: str | None = None
    ) -> None:
        super().__init__(message, headers=BEARER_CHALLENGE if challenge else None)
        self.status, self.code = status, code
        if login_next is not None:
            self.browser_location = login_location(login_next)

    def browser_page(self) -> Response:
        title = PAGE_ERROR_TITLES.get(self.status, "Error")
        html = render_error_html(self.status, title, self.message)
        return HTMLResponse(html, status_code=self.status, headers={**PAGE_HEADERS, **(self.headers or {})})


__all__ = [
    "Access",
    "Forbidden",
    "LoginRequired",
    "PageRefused",
    "api_access",
    "check_access",
    "logged_in",
    "login_next",
    "page_access",
    "wants_html",
]


# what a request shows for API_TOKEN (see :func:`presented`)
Presented = Literal["bearer", "cookie", "wrong_bearer", "not_bearer", "none"]


@dataclass(frozen=True)
class Access:
    """Who is asking: ``owner`` is the identity /ask sessions belong to (the same for bearer and cookie)."""

    via: Literal["bearer", "cookie"]
    owner: str


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a path on this site only (never ``//host`` or a full URL), else /reports."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 2000:
        return "/reports"
    return path


def login_location(next_path: str) -> str:
    """The login page, returning to ``next_path`` afterwards."""
    return "/login?next=" + quote(safe_next(next_path), safe="/")


def _key(settings: Settings) -> bytes | None:
    token = settings.api.api_token.get_secret_value() if settings.api.api_token else ""
    return hmac.new(token.encode(), KEY_CONTEXT, hashlib.sha256).digest() if token else None


def session_cookie(settings: Settings, *, now: float | None = None) -> str:
    """A fresh cookie value, valid for SESSION_TTL_S (API_TOKEN must be set)."""
    key = _key(settings)
    if key is None:
        raise ServiceUnavailable("logins are disabled: set API_TOKEN on the server")
    exp = int((now if now is not None else time.time()) + settings.api.session_ttl_s)
    return f"{exp}.{hmac.new(key, str(exp).encode(), hashlib.sha256).hexdigest()}"


def cookie_valid(settings: Settings, value: str | None, *, now: float | None = None) -> bool:
    """True when ``value`` is a cookie signed with the current API_TOKEN and not expired (constant-time compare)."""
    key = _key(settings)
    if key is None or not value or len(value) > MAX_COOKIE_CHARS:
        return False
    exp, _, sig = value.partition(".")
    if not exp.isdigit() or len(exp) > 12:
        return False
    expected = hmac.new(key, exp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode("ascii", "replace")):
        return False
    return int(exp) >= (now if now is not None else time.time())


def set_login_cookie(response: Response, settings: Settings) -> None:
    """Give ``response`` a fresh login cookie (attributes: see the module docstring)."""
    response.set_cookie(
        COOKIE_NAME,
        session_cookie(settings),
        max_age=settings.api.session_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.api.public_url.startswith("https://"),
    )


def clear_login_cookie(response: Response, settings: Settings) -> None:
    """Make the browser drop the login cookie."""
    secure = settings.api.public_url.startswith("https://")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=secure)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def same_origin(request: Request, settings: Settings) -> bool:
    """True when the request's Origin (or Referer) is PUBLIC_URL's origin or the one it was addressed to."""
    claimed = request.headers.get("origin") or _origin(request.headers.get("referer", ""))
    if not claimed or claimed == "null":
        return False
    allowed = {_origin(settings.api.public_url), _origin(str(request.base_url))}
    return claimed.lower().rstrip("/") in allowed


def presented(request: Request, settings: Settings) -> Presented:
    """What the request shows for API_TOKEN: ``bearer`` or ``cookie`` when it is let in (never with API_TOKEN
    unset); ``wrong_bearer``, ``not_bearer`` (an Authorization header of another scheme, or an empty token) or
    ``none`` (no Authorization header and no valid login cookie) when it is not. A request with an Authorization
    header is judged by that header alone."""
    if request.headers.get("authorization"):
        given = bearer_token(request.headers)
        if given is None:
            return "not_bearer"
        token = settings.api.api_token
        return "bearer" if token is not None and secret_equal(given, token.get_secret_value()) else "wrong_bearer"
    return "cookie" if cookie_valid(settings, request.cookies.get(COOKIE_NAME)) else "none"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _target(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def login_next(request: Request) -> str | None:
    """Where the login page returns to after logging in: the path and query of ``request``; None when logins are
    disabled (API_TOKEN unset)."""
    return _target(request) if _settings(request).api.api_token is not None else None


def logged_in(request: Request) -> bool:
    """A valid bearer token, or (without an Authorization header) a valid login cookie."""
    return presented(request, _settings(request)) in ("bearer", "cookie")


def check_access(request: Request) -> Access:
    """Bearer token or login cookie; raise 503 (API_TOKEN unset), 401 (LoginRequired) or 403 (cross-site)."""
    settings = _settings(request)
    if settings.api.api_token is None:
        raise ServiceUnavailable("the API is disabled: set API_TOKEN on the server")
    owner = owner_identity(settings.api.api_token.get_secret_value())
    shown = presented(request, settings)
    if shown == "bearer":
        return Access(via="bearer", owner=owner)
    if shown == "wrong_bearer":
        raise Unauthorized(INVALID_BEARER, headers=BEARER_CHALLENGE)
    if shown == "not_bearer":
        raise Unauthorized(MISSING_BEARER, headers=BEARER_CHALLENGE)
    if shown == "none":
        cookie = request.cookies.get(COOKIE_NAME)
        message = "the login has expired; log in again" if cookie else "log in at /login or send a bearer token"
        raise LoginRequired(message, next_path=_target(request))
    if request.method not in SAFE_METHODS and not same_origin(request, settings):
        raise Forbidden("cross-site request refused: the Origin of a logged-in request must be this site")
    return Access(via="cookie", owner=owner)


async def api_access(request: Request) -> Access:
    """FastAPI dependency: the caller's :class:`Access`, or the error that refuses it (see :func:`check_access`)."""
    return check_access(request)


async def page_access(request: Request) -> Access:
    """FastAPI dependency of the report list and the digest (read-only pages): bearer token or login cookie, else
    :class:`PageRefused` — 503 with API_TOKEN unset, 401 (a browser: the login page) without credentials, 401 for
    a wrong token or another scheme."""
    settings = _settings(request)
    if settings.api.api_token is None:
        raise PageRefused(503, "unavailable", "the report API is disabled: set API_TOKEN on the server")
    shown = presented(request, settings)
    if shown == "none":
        raise PageRefused(401, "unauthorized", MISSING_BEARER, challenge=True, login_next=login_next(request))
    if shown not in ("bearer", "cookie"):
        raise PageRefused(401, "unauthorized", INVALID_BEARER, challenge=True)
    return Access(
        via="bearer" if shown == "bearer" else "cookie", owner=owner_identity(settings.api.api_token.get_secret_value())
    )
