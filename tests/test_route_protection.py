"""Every route of the full API is protected unless it is public by design: a request without credentials, or with a
wrong bearer token, is refused (401; a browser's GET may be sent to the login page instead) on every other route.

A new route is caught here until it either takes an access dependency (``webhook.browser_auth.api_access``,
``page_access``, ``webhook.reports_routes.report_access``) or is added to :data:`PUBLIC` with its reason.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.routing import BaseRoute

from webhook.app import all_routers, create_app

# paths open without API_TOKEN credentials, and why
PUBLIC: dict[str, str] = {
    "/healthz": "liveness probe",
    "/readyz": "readiness probe",
    "/health": "dependency status for monitoring, no secrets",
    "/metrics": "Prometheus scrape",
    "/login": "the login form and its post",
    "/logout": "clears the login cookie (same-origin only)",
    "/": "the chat page, static; its API is protected",
    "/chat/{name}": "the chat page's static assets",
    "/docs": "interactive API docs, only with API_DOCS",
    "/docs/oauth2-redirect": "the docs page's OAuth helper, only with API_DOCS",
    "/openapi.json": "the API schema, only with API_DOCS",
}
# routes with credentials of their own (webhook auth), refused with 401 like the rest
OWN_AUTH = {"/webhook/grafana", "/webhook/alertmanager"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json", "Content-Type": "application/json"}


@pytest.fixture
async def app(make_settings: Any) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(api={"api_docs": True}))
    async with LifespanManager(app):
        yield app


def flatten(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """(path, method) of ``routes``, descending into included routers (FastAPI keeps them as one entry each)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += flatten(included.routes)
            continue
        path = getattr(route, "path", None)
        assert isinstance(path, str), route
        found += [(path, method) for method in sorted(getattr(route, "methods", None) or ()) if method != "HEAD"]
    return found


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(path, method) of every route of the app; none of the API's routers is missed."""
    found = flatten(app.routes)
    declared = {pair for router in all_routers().values() for pair in flatten(router.routes)}
    assert declared <= set(found)
    return found


def concrete(path: str) -> str:
    """The path with every parameter filled in (a well-formed report id, a chat asset name)."""
    return re.sub(r"\{[^}]+\}", "r1", path)


def test_the_public_list_names_routes_that_exist(app: FastAPI) -> None:
    paths = {path for path, _ in routes(app)}
    assert set(PUBLIC) | OWN_AUTH <= paths
    assert {"/reports", "/reports/{report_id}", "/digest", "/ask", "/ask/stream", "/ask/reports"} <= paths


async def test_every_non_public_route_refuses_a_request_without_credentials(app: FastAPI) -> None:
    protected = [(path, method) for path, method in routes(app) if path not in PUBLIC]
    assert len(protected) >= 12
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path, method in protected:
            url = concrete(path)
            for headers in ({}, {"Authorization": "Bearer not-the-token"}):
                response = await client.request(method, url, headers={**JSON, **headers}, content=b"{}")
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["error"]["code"] == "unauthorized", (method, path)
                assert response.headers["www-authenticate"], (method, path)
            browser = await client.request(method, url, headers=BROWSER)
            if method == "GET" and path not in OWN_AUTH:
                assert browser.status_code == 303, (path, browser.status_code)
                assert browser.headers["location"].startswith("/login?next=/"), path
            else:
                assert browser.status_code == 401, (method, path, browser.status_code)
