"""``GET /login``, ``POST /login`` and ``POST /logout``: the browser login of :mod:`webhook.browser_auth`.

The form posts ``token`` (``application/x-www-form-urlencoded``); the right API_TOKEN sets the login cookie and
redirects to ``next`` (a path on this site), a wrong one shows the form again with 401; too many wrong ones from one
address are refused for a while (429, :mod:`webhook.login_throttle`). No JavaScript: the pages
work with scripts blocked, and their Content-Security-Policy allows none.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reports.render import environment
from triage.settings import Settings
from webhook.bearer import secret_equal
from webhook.browser_auth import (
    COOKIE_NAME,
    clear_login_cookie,
    cookie_valid,
    safe_next,
    same_origin,
    set_login_cookie,
)
from webhook.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType
from webhook.intake import read_body
from webhook.login_throttle import LoginThrottle

log = logging.getLogger("webhook.login")
router = APIRouter(tags=["login"])

MAX_FORM_BYTES = 4096
FORM_TYPE = "application/x-www-form-urlencoded"
LOGIN_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def _page(settings: Settings, *, next_path: str, message: str = "", status: int = 200) -> HTMLResponse:
    enabled = settings.api.api_token is not None
    if not enabled:
        message, status = "Logins are disabled: set API_TOKEN on the server.", 503
    html = environment().get_template("login.html.j2").render(message=message, next=next_path, enabled=enabled)
    return HTMLResponse(html, status_code=status, headers=LOGIN_HEADERS)


@router.get("/login", response_class=HTMLResponse, summary="The login form")
async def login_page(request: Request, next: str | None = None) -> Response:
    settings: Settings = request.app.state.settings
    target = safe_next(next)
    if cookie_valid(settings, request.cookies.get(COOKIE_NAME)):
        return RedirectResponse(target, status_code=303)
    return _page(settings, next_path=target)


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_TYPE:
        raise UnsupportedMediaType(f"the login form is posted as {FORM_TYPE}")
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except PayloadTooLarge:
        raise PayloadTooLarge(f"the login form is over {MAX_FORM_BYTES} bytes") from None
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if values}


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle()
    return throttle


@router.post("/login", response_class=HTMLResponse, summary="Log in with API_TOKEN (form field token)")
async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    # a form on another site must not log this browser in (login CSRF); curl sends no Origin and is fine
    if request.headers.get("origin") and not same_origin(request, settings):
        raise Forbidden("cross-site login refused: post the form from this site's /login page")
    throttle, client = _throttle(request), request.client.host if request.client else "unknown"
    wait_s = throttle.retry_after_s(client)
    if wait_s:
        message = f"Too many wrong tokens from this address; try again in {wait_s} s."
        locked = _page(settings, next_path="/reports", message=message, status=429)
        locked.headers["Retry-After"] = str(wait_s)
        return locked
    form = await _form(request)
    target = safe_next(form.get("next"))
    if settings.api.api_token is None:
        return _page(settings, next_path=target)
    given = form.get("token", "").strip()
    if not given or not secret_equal(given, settings.api.api_token.get_secret_value()):
        throttle.failed(client)
        log.warning("login refused", extra={"reason": "empty token" if not given else "wrong token"})
        return _page(settings, next_path=target, message="That token was not accepted.", status=401)
    throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    set_login_cookie(response, settings)
    log.info("login")
    return response


@router.post("/logout", summary="Log out (clears the login cookie)")
async def logout(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not same_origin(request, settings):
        raise Forbidden("cross-site logout refused")
    response = RedirectResponse("/login", status_code=303)
    clear_login_cookie(response, settings)
    return response
