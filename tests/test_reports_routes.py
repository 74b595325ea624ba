"""The report pages and API: bearer access, signed links, content negotiation, filters, pagination, error shape."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from reports.links import LinkSigner
from reports.models import Evidence, ReportStatus
from tests.support.sample_reports import START, sample_alert, sample_report
from webhook.app import create_app

TOKEN = "test-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
async def app_client(make_settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(make_settings())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, app


@pytest.fixture
async def client(app_client: tuple[httpx.AsyncClient, Any]) -> httpx.AsyncClient:
    return app_client[0]


@pytest.fixture
async def stored(app_client: tuple[httpx.AsyncClient, Any]) -> Any:
    report = sample_report()
    await app_client[1].state.store.save(report)
    return report


def signer(app_client: tuple[httpx.AsyncClient, Any]) -> LinkSigner:
    return LinkSigner.from_settings(app_client[1].state.settings)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    return dict(error)


async def test_report_json_follows_the_contract_with_evidence_ranked(client: httpx.AsyncClient, stored: Any) -> None:
    response = await client.get(f"/reports/{stored.id}.json", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    for key in ("id", "status", "alert", "summary", "hypotheses", "evidence", "runbooks", "history", "sources"):
        assert key in body
    for key in ("llm", "annotation", "created_at", "updated_at"):
        assert key in body
    assert set(body["alert"]) >= {"fingerprint", "alertname", "labels", "annotations", "starts_at", "ends_at", "status"}
    scores = [e["score"] for e in body["evidence"]]
    assert scores == sorted(scores, reverse=True)
    assert body["sources"]["proxmox"] == {
        "ok": False,
        "ms": 5000.0,
        "error": "timed out after 5 s",
        "requests": 1,
        "state": "timeout",
    }


async def test_report_page_is_html_with_a_script_free_policy(client: httpx.AsyncClient, stored: Any) -> None:
    response = await client.get(f"/reports/{stored.id}", headers=AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"
    assert "<h1>HostMemoryPressure</h1>" in response.text


async def test_report_markdown_is_served_as_markdown(client: httpx.AsyncClient, stored: Any) -> None:
    response = await client.get(f"/reports/{stored.id}.md", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("# HostMemoryPressure")
    assert f"(<http://testserver/reports/{stored.id}>)" in response.text


async def test_signed_link_opens_the_page_without_a_login(
    app_client: tuple[httpx.AsyncClient, Any], stored: Any
) -> None:
    client = app_client[0]
    url = signer(app_client).report_url(stored.id).removeprefix("http://testserver")

    response = await client.get(url, headers=BROWSER)

    assert response.status_code == 200
    assert "pve2 ran out of memory" in response.text
    # the page's JSON and Markdown links carry the signature, so they open too
    query = url.split("?", 1)[1].replace("&", "&amp;")
    assert f'href="{stored.id}.json?{query}"' in response.text
    json_response = await client.get(f"/reports/{stored.id}.json?" + url.split("?", 1)[1])
    assert json_response.status_code == 200


async def test_expired_link_is_refused_with_the_error_shape(
    app_client: tuple[httpx.AsyncClient, Any], stored: Any
) -> None:
    past = time.time() - signer(app_client).ttl_s - 60
    url = signer(app_client).report_url(stored.id, now=past).removeprefix("http://testserver")

    error = assert_error(await app_client[0].get(url), 401)
    assert error["code"] == "invalid_signature"


async def test_tampered_links_are_refused(app_client: tuple[httpx.AsyncClient, Any], stored: Any) -> None:
    client = app_client[0]
    good = signer(app_client).report_url(stored.id).removeprefix("http://testserver")
    path, query = good.split("?", 1)
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    other = sample_report(alert=sample_alert(fingerprint="other"))
    await app_client[1].state.store.save(other)

    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    for url in (
        f"{path}?exp={exp}&sig={flipped}",
        f"{path}?exp={int(exp) + 86400}&sig={sig}",
        f"/reports/{other.id}?exp={exp}&sig={sig}",
        f"{path}?exp={exp}",
        f"{path}?exp=abc&sig={sig}",
    ):
        assert_error(await client.get(url), 401)


async def test_browser_without_credentials_is_sent_to_the_login_page(client: httpx.AsyncClient, stored: Any) -> None:
    response = await client.get(f"/reports/{stored.id}", headers=BROWSER)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/reports/{stored.id}"


async def test_wrong_bearer_token_is_refused(client: httpx.AsyncClient, stored: Any) -> None:
    error = assert_error(await client.get(f"/reports/{stored.id}.json", headers={"Authorization": "Bearer no"}), 401)
    assert error["message"] == "invalid bearer token"
    assert_error(await client.get("/reports", headers={"Authorization": "Bearer no"}), 401)
    assert_error(await client.get("/reports"), 401)


async def test_unknown_report_is_404_for_an_authorised_caller(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/reports/0123456789abcdef01234567.json", headers=AUTH), 404)
    assert_error(await client.get("/reports/0123456789abcdef01234567.json"), 401)


async def test_list_is_json_for_clients_and_html_for_browsers(client: httpx.AsyncClient, stored: Any) -> None:
    as_json = await client.get("/reports", headers=AUTH)
    assert as_json.status_code == 200
    body = as_json.json()
    assert body["total"] == 1
    assert body["reports"][0]["id"] == stored.id
    assert body["reports"][0]["alertname"] == "HostMemoryPressure"

    as_html = await client.get("/reports", headers={**AUTH, **BROWSER})
    assert as_html.headers["content-type"].startswith("text/html")
    assert f'href="/reports/{stored.id}"' in as_html.text


async def test_list_filters_and_pages(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = app_client
    for n in range(7):
        alert = sample_alert(
            fingerprint=f"fp{n}",
            alertname="DiskFull" if n % 2 else "HostDown",
            starts_at=START + timedelta(minutes=n),
        )
        status = ReportStatus.resolved if n >= 5 else ReportStatus.triaged
        await app.state.store.save(sample_report(alert=alert, status=status))

    disk = (await client.get("/reports", params={"alertname": "DiskFull"}, headers=AUTH)).json()
    assert disk["total"] == 3
    assert {r["alertname"] for r in disk["reports"]} == {"DiskFull"}
    resolved = (await client.get("/reports", params={"status": "resolved"}, headers=AUTH)).json()
    assert resolved["total"] == 2
    window = {"since": (START + timedelta(minutes=2)).isoformat(), "until": (START + timedelta(minutes=4)).isoformat()}
    assert (await client.get("/reports", params=window, headers=AUTH)).json()["total"] == 2

    first = (await client.get("/reports", params={"limit": 3}, headers=AUTH)).json()
    assert [r["starts_at"] for r in first["reports"]] == sorted(
        (r["starts_at"] for r in first["reports"]), reverse=True
    )
    assert first["next_offset"] == 3
    last = (await client.get("/reports", params={"limit": 3, "offset": 6}, headers=AUTH)).json()
    assert len(last["reports"]) == 1
    assert last["next_offset"] is None

    html = (await client.get("/reports", params={"limit": 3, "offset": 3}, headers={**AUTH, **BROWSER})).text
    assert 'rel="prev"' in html
    assert 'rel="next"' in html


async def test_bad_filter_values_get_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/reports", params={"status": "bogus"}, headers=AUTH), 422)
    assert_error(await client.get("/reports", params={"since": "yesterday"}, headers=AUTH), 422)
    assert_error(await client.get("/reports", params={"limit": 100000}, headers=AUTH), 422)


async def test_without_api_token_the_pages_are_disabled_not_open(make_settings: Any) -> None:
    app = create_app(make_settings(api={"api_token": None}))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert_error(await client.get("/reports"), 503)
            assert_error(await client.get("/reports/0123456789abcdef01234567"), 503)


async def test_xss_in_labels_and_logs_is_shown_as_text(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = app_client
    alert = sample_alert(labels={"instance": "<script>alert('label')</script>", "severity": "critical"})
    report = sample_report(
        alert=alert,
        evidence=[
            Evidence(
                id="log1",
                source="loki",
                kind="log",
                title="nginx error",
                detail='<b>bold</b><iframe src="https://evil"></iframe>',
                at=START,
                score=0.9,
            )
        ],
    )
    await app.state.store.save(report)

    html = (await client.get(f"/reports/{report.id}", headers=AUTH)).text

    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;iframe" in html
    assert "<iframe" not in html
    assert "<script" not in html


async def _three_reports(app: Any) -> None:
    for n, (labels, hours) in enumerate(
        [
            ({"alertname": "DiskFull", "instance": "pve1:9100", "severity": "critical"}, 0),
            ({"alertname": "DiskFull", "guest": "jellyfin", "severity": "warning"}, 24),
            ({"alertname": "GuestDown", "node": "pve2", "severity": "critical"}, 48),
        ]
    ):
        alert = sample_alert(
            fingerprint=f"fp-{n}",
            alertname=labels["alertname"],
            labels=labels,
            starts_at=START - timedelta(hours=hours),
        )
        await app.state.store.save(sample_report(alert=alert))


async def test_the_list_filters_by_severity_target_and_day(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = app_client
    await _three_reports(app)

    async def names(query: str) -> list[tuple[str, str]]:
        body = (await client.get(f"/reports?{query}", headers=AUTH)).json()
        return [(r["alertname"], r["target"]) for r in body["reports"]]

    assert await names("severity=critical") == [("DiskFull", "pve1:9100"), ("GuestDown", "pve2")]
    assert await names("target=jelly") == [("DiskFull", "jellyfin")]
    assert await names(f"date={(START - timedelta(hours=48)).date().isoformat()}") == [("GuestDown", "pve2")]
    assert await names("target=pve&severity=critical&alertname=GuestDown") == [("GuestDown", "pve2")]
    assert_error(await client.get("/reports?date=yesterday", headers=AUTH), 422)


async def test_the_list_page_keeps_the_filters_in_its_form(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = app_client
    await _three_reports(app)

    page = await client.get("/reports?target=pve1&severity=critical&status=triaged", headers={**AUTH, **BROWSER})

    assert page.status_code == 200
    assert 'name="target" value="pve1"' in page.text
    assert 'name="severity" value="critical"' in page.text
    assert '<option value="triaged" selected>' in page.text
    assert page.text.count('<td class="name"><a href="/reports/') == 1
    assert "form-action 'self'" in page.headers["content-security-policy"]


async def test_the_filter_forms_empty_fields_mean_any(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = app_client
    await _three_reports(app)

    response = await client.get("/reports?alertname=&severity=&status=&target=pve1&date=", headers=AUTH)

    assert response.status_code == 200
    assert [r["target"] for r in response.json()["reports"]] == ["pve1:9100"]
