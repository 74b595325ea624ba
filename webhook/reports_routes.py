"""Report pages and the report API: ``/reports``, ``/reports/{id}`` (HTML), ``.json``, ``.md``.

Access, a FastAPI dependency of every route: ``Authorization: Bearer $API_TOKEN`` or the browser login cookie
(:func:`webhook.browser_auth.page_access`) for the list; a single report also opens with a signed link
(``?exp=…&sig=…``, see :mod:`reports.links`; :func:`report_access`) so a click on a Grafana annotation needs no
login. A browser without either is sent to ``/login``. With neither API_TOKEN nor LINK_SIGNING_KEY set, the pages
are disabled (503), never open.

Pages carry no JavaScript; the Content-Security-Policy (``reports.render.PAGE_HEADERS``) forbids scripts outright,
so even a template bug that let markup through could not run code.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException

from reports.context import ListForm, Pair, ReportListPage, build_report_row
from reports.grafana_links import GrafanaLinks
from reports.links import LinkSigner
from reports.models import Report, ReportStatus
from reports.render import PAGE_HEADERS, render_list_html, render_report_html, render_report_markdown
from reports.store import ReportStore
from reports.targets import alert_target
from triage.settings import Settings
from webhook.browser_auth import INVALID_BEARER, PageRefused, logged_in, login_next, page_access
from webhook.errors import ServiceUnavailable, wants_html

router = APIRouter(tags=["reports"])

_REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PAGE = 200

NO_LINK = "missing bearer token or signed link"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _store(request: Request) -> ReportStore:
    store: ReportStore | None = getattr(request.app.state, "store", None)
    if store is None:
        raise ServiceUnavailable("the report store is starting or stopping; retry in a moment")
    return store


async def report_access(request: Request, report_id: str) -> str:
    """FastAPI dependency of one report: a bearer token, the login cookie or a valid link signature; the signed
    query to carry to sibling links ("" without a signature), or :class:`PageRefused`."""
    if not _REPORT_ID.match(report_id):
        # same answer as a bad signature: an id that can never exist reveals nothing
        raise PageRefused(401, "unauthorized", NO_LINK, challenge=True)
    if logged_in(request):
        return ""
    settings = _settings(request)
    signer = LinkSigner.from_settings(settings)
    if settings.api.api_token is None and signer.key is None:
        raise PageRefused(503, "unavailable", "report pages are disabled: set API_TOKEN (or LINK_SIGNING_KEY)")
    exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
    if exp is None and sig is None:
        if request.headers.get("authorization"):
            raise PageRefused(401, "unauthorized", INVALID_BEARER, challenge=True)
        raise PageRefused(401, "unauthorized", NO_LINK, challenge=True, login_next=login_next(request))
    if not signer.verify(report_id, exp, sig):
        raise PageRefused(
            401, "invalid_signature", "the link is invalid or has expired; open the report from Grafana again"
        )
    return "?" + urlencode({"exp": exp, "sig": sig})


LinkQuery = Annotated[str, Depends(report_access)]


async def _load(request: Request, report_id: str) -> Report:
    report = await _store(request).get(report_id)
    if report is None:
        raise HTTPException(404, detail="report not found")
    return report


def report_json(report: Report) -> dict[str, Any]:
    """The Report JSON contract of docs/architecture.md: the report with its evidence ranked by score."""
    data = report.model_dump(mode="json")
    data["evidence"] = [e.model_dump(mode="json") for e in report.ranked_evidence()]
    return data


@router.get("/reports/{report_id}.json", summary="One report as JSON", dependencies=[Depends(report_access)])
async def get_report_json(request: Request, report_id: str) -> Response:
    report = await _load(request, report_id)
    return JSONResponse(report_json(report), headers={"Cache-Control": "private, no-store"})


@router.get("/reports/{report_id}.md", summary="One report as Markdown")
async def get_report_markdown(request: Request, report_id: str, link_query: LinkQuery) -> Response:
    report = await _load(request, report_id)
    base = _settings(request).api.public_url.rstrip("/")
    text = render_report_markdown(report, report_url=f"{base}/reports/{report.id}{link_query}")
    return PlainTextResponse(
        text, media_type="text/markdown; charset=utf-8", headers={"Cache-Control": "private, no-store"}
    )


@router.get("/reports/{report_id}", summary="One report as an HTML page", response_class=HTMLResponse)
async def get_report_page(request: Request, report_id: str, link_query: LinkQuery) -> Response:
    report = await _load(request, report_id)
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


@router.get("/reports", summary="Reports, newest first, filtered and paginated", dependencies=[Depends(page_access)])
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
