"""Report pages and the report API: ``/reports``, ``/reports/{id}`` (HTML), ``.json``, ``.md``.

Access: ``Authorization: Bearer $API_TOKEN`` or the browser login cookie (:mod:`webhook.browser_auth`) for
everything; a single report also opens with a signed link (``?exp=…&sig=…``, see :mod:`reports.links`) so a click
on a Grafana annotation needs no login. A browser without either is sent to ``/login``. With neither API_TOKEN nor
LINK_SIGNING_KEY set, the pages are disabled (503), never open.

Pages carry no JavaScript; the Content-Security-Policy forbids scripts outright, so even a template bug that let
markup through could not run code. Forms (the list's filters, log out) may only post to this site.
``Referrer-Policy: same-origin`` keeps the signed URL from leaking to the runbook and Grafana links on the page,
while our own forms still carry their ``Origin`` (``no-referrer`` would make it ``null`` and fail the CSRF check).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException

from reports.context import ListForm, Pair, ReportListPage, build_report_row
from reports.grafana_links import GrafanaLinks
from reports.links import LinkSigner
from reports.models import Report, ReportStatus
from reports.render import render_error_html, render_list_html, render_report_html, render_report_markdown
from reports.store import ReportStore
from reports.targets import alert_target
from triage.settings import Settings
from webhook.bearer import BEARER_CHALLENGE
from webhook.browser_auth import login_location, presented
from webhook.errors import ServiceUnavailable, error_body, wants_html

router = APIRouter(tags=["reports"])

_REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PAGE = 200

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "private, no-store",
}


class _Denied(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        login: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
        # no credentials at all: a browser is better served by the login page than by an error
        self.login = login


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _store(request: Request) -> ReportStore:
    store: ReportStore | None = getattr(request.app.state, "store", None)
    if store is None:
        raise ServiceUnavailable("the report store is starting or stopping; retry in a moment")
    return store


def _logged_in(request: Request, settings: Settings) -> bool:
    """A valid bearer token, or (without an Authorization header) a valid login cookie."""
    return presented(request, settings) in ("bearer", "cookie")


def _check_bearer(request: Request) -> None:
    settings = _settings(request)
    if settings.api.api_token is None:
        raise _Denied(503, "unavailable", "the report API is disabled: set API_TOKEN on the server")
    shown = presented(request, settings)
    if shown == "none":
        message = "missing bearer token (Authorization: Bearer $API_TOKEN)"
        raise _Denied(401, "unauthorized", message, BEARER_CHALLENGE, login=True)
    if shown not in ("bearer", "cookie"):
        raise _Denied(401, "unauthorized", "invalid bearer token", BEARER_CHALLENGE)


def _check_report_access(request: Request, report_id: str) -> str:
    """Allow a bearer token or a valid link signature; return the signed query to carry to sibling links."""
    settings = _settings(request)
    if _logged_in(request, settings):
        return ""
    signer = LinkSigner.from_settings(settings)
    if settings.api.api_token is None and signer.key is None:
        raise _Denied(503, "unavailable", "report pages are disabled: set API_TOKEN (or LINK_SIGNING_KEY)")
    exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
    if exp is None and sig is None:
        if request.headers.get("authorization"):
            raise _Denied(401, "unauthorized", "invalid bearer token", BEARER_CHALLENGE)
        raise _Denied(401, "unauthorized", "missing bearer token or signed link", BEARER_CHALLENGE, login=True)
    if not signer.verify(report_id, exp, sig):
        raise _Denied(
            401, "invalid_signature", "the link is invalid or has expired; open the report from Grafana again"
        )
    return "?" + urlencode({"exp": exp, "sig": sig})


def _denied_response(request: Request, denied: _Denied) -> Response:
    if denied.login and wants_html(request) and _settings(request).api.api_token is not None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(login_location(target), status_code=303, headers={"Cache-Control": "no-store"})
    if wants_html(request):
        titles = {401: "Not authorised", 503: "Unavailable"}
        html = render_error_html(denied.status, titles.get(denied.status, "Error"), denied.message)
        return HTMLResponse(html, status_code=denied.status, headers={**PAGE_HEADERS, **(denied.headers or {})})
    return JSONResponse(
        error_body(denied.status, denied.code, denied.message), status_code=denied.status, headers=denied.headers
    )


async def _load(request: Request, report_id: str) -> tuple[Report, str] | Response:
    try:
        if not _REPORT_ID.match(report_id):
            # same answer as a bad signature: an id that can never exist reveals nothing
            raise _Denied(401, "unauthorized", "missing bearer token or signed link", BEARER_CHALLENGE)
        link_query = _check_report_access(request, report_id)
    except _Denied as denied:
        return _denied_response(request, denied)
    report = await _store(request).get(report_id)
    if report is None:
        raise HTTPException(404, detail="report not found")
    return report, link_query


def report_json(report: Report) -> dict[str, Any]:
    """The Report JSON contract of docs/architecture.md: the report with its evidence ranked by score."""
    data = report.model_dump(mode="json")
    data["evidence"] = [e.model_dump(mode="json") for e in report.ranked_evidence()]
    return data


@router.get("/reports/{report_id}.json", summary="One report as JSON")
async def get_report_json(request: Request, report_id: str) -> Response:
    loaded = await _load(request, report_id)
    if isinstance(loaded, Response):
        return loaded
    report, _ = loaded
    return JSONResponse(report_json(report), headers={"Cache-Control": "private, no-store"})


@router.get("/reports/{report_id}.md", summary="One report as Markdown")
async def get_report_markdown(request: Request, report_id: str) -> Response:
    loaded = await _load(request, report_id)
    if isinstance(loaded, Response):
        return loaded
    report, link_query = loaded
    base = _settings(request).api.public_url.rstrip("/")
    text = render_report_markdown(report, report_url=f"{base}/reports/{report.id}{link_query}")
    return PlainTextResponse(
        text, media_type="text/markdown; charset=utf-8", headers={"Cache-Control": "private, no-store"}
    )


@router.get("/reports/{report_id}", summary="One report as an HTML page", response_class=HTMLResponse)
async def get_report_page(request: Request, report_id: str) -> Response:
    loaded = await _load(request, report_id)
    if isinstance(loaded, Response):
        return loaded
    report, link_query = loaded
    html = render_report_html(report, link_query=link_query, grafana=_grafana_links(_settings(request)))
    return HTMLResponse(html, headers=PAGE_HEADERS)


def _grafana_links(settings: Settings) -> GrafanaLinks:
    grafana = settings.grafana
    return GrafanaLinks(base_url=grafana.url, prometheus_uid=grafana.prometheus_uid, loki_uid=grafana.loki_uid)


def _list_href(params: dict[str, str], offset: int, limit: int) -> str:
    query = {k: v for k, v in params.items() if k not in ("offset", "limit") and v}
    query["limit"] = str(limit)
    if offset:
        query["offset"] = str(offset)
    return "/reports?" + urlencode(query)


def _blank_is_none(value: object) -> object:
    # the filter form submits every field, the empty ones as "": they mean "any"
    return None if isinstance(value, str) and not value.strip() else value


def _day_window(
    day: date | None, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``since``/``until`` narrowed to the UTC day ``day`` (when given)."""
    if day is None:
        return since, until
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    return (max(since, start) if since else start), (min(until, end) if until else end)


@router.get("/reports", summary="Reports, newest first, filtered and paginated")
async def list_reports(
    request: Request,
    alertname: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[ReportStatus | None, BeforeValidator(_blank_is_none), Query()] = None,
    severity: Annotated[str | None, Query(max_length=40)] = None,
    target: Annotated[str | None, Query(max_length=200, description="host, node, guest or instance (prefix)")] = None,
    day: Annotated[
        date | None, BeforeValidator(_blank_is_none), Query(alias="date", description="alerts started this UTC day")
    ] = None,
    since: Annotated[datetime | None, BeforeValidator(_blank_is_none), Query()] = None,
    until: Annotated[datetime | None, BeforeValidator(_blank_is_none), Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    try:
        _check_bearer(request)
    except _Denied as denied:
        return _denied_response(request, denied)
    store = _store(request)
    start, end = _day_window(day, since, until)
    filters: dict[str, Any] = {
        "alertname": (alertname or "").strip() or None,
        "status": status,
        "since": start,
        "until": end,
        "severity": (severity or "").strip() or None,
        "target": (target or "").strip() or None,
    }
    total = await store.count(**filters)
    reports = await store.list(**filters, limit=limit, offset=offset)
    next_offset = offset + limit if offset + limit < total else None
    if wants_html(request):
        params = {
            "alertname": filters["alertname"] or "",
            "severity": filters["severity"] or "",
            "status": status.value if status else "",
            "target": filters["target"] or "",
            "date": day.isoformat() if day else "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
        }
        form = ListForm(
            alertname=params["alertname"],
            severity=params["severity"],
            status=params["status"],
            target=params["target"],
            date=params["date"],
        )
        page = ReportListPage(
            rows=[build_report_row(r, f"/reports/{r.id}") for r in reports],
            total=total,
            offset=offset,
            limit=limit,
            filters=[Pair(k, v) for k, v in params.items() if v],
            prev_href=_list_href(params, max(0, offset - limit), limit) if offset > 0 else None,
            next_href=_list_href(params, next_offset, limit) if next_offset is not None else None,
            form=form,
        )
        return HTMLResponse(render_list_html(page), headers=PAGE_HEADERS)
    items = [
        {
            "id": r.id,
            "status": r.status.value,
            "alertname": r.alert.alertname,
            "severity": r.alert.severity,
            "target": alert_target(r.alert),
            "fingerprint": r.alert.fingerprint,
            "starts_at": r.alert.starts_at.isoformat(),
            "ends_at": r.alert.ends_at.isoformat() if r.alert.ends_at else None,
            "summary": r.summary,
            "delivery": r.delivery.value,
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
            "url": f"/reports/{r.id}",
        }
        for r in reports
    ]
    body = {"reports": items, "total": total, "limit": limit, "offset": offset, "next_offset": next_offset}
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})
