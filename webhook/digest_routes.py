"""The alert digest as a page: ``/digest`` (HTML for browsers, JSON otherwise), ``/digest.json``, ``/digest.md``.

Same access as the report list, a dependency of the whole router (:func:`webhook.browser_auth.page_access`:
``Authorization: Bearer $API_TOKEN`` or the login cookie): the digest spans many reports, so no signed link opens
it. ``since`` is a duration (``7d``, ``24h``, ``2w``) or a date; a bad value is a 422 that says what is accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from reports.digest import Digest, DigestPeriodError, load_digest, parse_since
from reports.render import PAGE_HEADERS, render_digest_html, render_digest_markdown
from webhook.browser_auth import page_access
from webhook.errors import error_body, wants_html
from webhook.reports_routes import _settings, _store

router = APIRouter(tags=["reports"], dependencies=[Depends(page_access)])

Since = Annotated[str, Query(max_length=40, description="7d, 24h, 90m, 2w or an ISO date")]
_NO_STORE = {"Cache-Control": "private, no-store"}


async def _digest(request: Request, since: str) -> Digest | Response:
    until = datetime.now(UTC)
    try:
        start = parse_since(since, until)
    except DigestPeriodError as exc:
        return JSONResponse(error_body(422, "invalid_period", str(exc)), status_code=422)
    return await load_digest(_store(request), start, until)


@router.get("/digest.json", summary="The alert digest of a period as JSON")
async def get_digest_json(request: Request, since: Since = "7d") -> Response:
    digest = await _digest(request, since)
    if isinstance(digest, Response):
        return digest
    return JSONResponse(digest.to_json(), headers=_NO_STORE)


@router.get("/digest.md", summary="The alert digest of a period as Markdown")
async def get_digest_markdown(request: Request, since: Since = "7d") -> Response:
    digest = await _digest(request, since)
    if isinstance(digest, Response):
        return digest
    text = render_digest_markdown(digest, base_url=_settings(request).api.public_url)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8", headers=_NO_STORE)


@router.get("/digest", summary="The alert digest of a period (HTML for browsers, JSON otherwise)")
async def get_digest(request: Request, since: Since = "7d") -> Response:
    digest = await _digest(request, since)
    if isinstance(digest, Response):
        return digest
    if wants_html(request):
        return HTMLResponse(render_digest_html(digest, since_param=since.strip()), headers=PAGE_HEADERS)
    return JSONResponse(digest.to_json(), headers=_NO_STORE)
