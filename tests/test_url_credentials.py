"""Credentials written inside a data-source URL are secrets: the upstream that echoes our request headers in its
error body, the report's delivery error, the logs and the /ask redactor never show them in any form."""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any

import httpx
import pytest

from reports.delivery import DeliveryError, deliver
from tests.support.sample_reports import sample_report
from tools.credentials import credential_forms, secret_values, split_userinfo, url_secret_forms
from tools.errors import SourceHTTPError
from tools.grafana import GrafanaClient
from triage.agent.stream_redaction import Redactor
from triage.json_logs import configure_logging

USER, PASSWORD = "user", "pw"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
URL = f"http://{USER}:{PASSWORD}@grafana.lan:3000"


def echoing(seen: list[httpx.Request]) -> httpx.MockTransport:
    """An upstream that fails with every request header echoed in its error body (as some proxies do)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {k: v for k, v in request.headers.items()}
        return httpx.Response(400, json={"message": "bad request", "headers": headers, "url": str(request.url)})

    return httpx.MockTransport(handler)


def leaks(text: str) -> list[str]:
    return [form for form in (BASIC, f"{USER}:{PASSWORD}", f"Basic {BASIC}") if form in text]


async def test_userinfo_becomes_basic_auth_and_no_error_text_carries_it() -> None:
    seen: list[httpx.Request] = []
    client = GrafanaClient(URL, token="glsa_token_value_123", transport=echoing(seen), retries=0)
    try:
        with pytest.raises(SourceHTTPError) as caught:
            await client.get_json("/api/search")
    finally:
        await client.aclose()

    # sent as Basic auth (what the URL asked for), to a URL that no longer carries it
    assert seen[0].headers["authorization"] == f"Basic {BASIC}"
    assert "@" not in str(seen[0].url)
    error = caught.value
    shown = " ".join((str(error), error.body_excerpt, error.url))
    assert "bad request" in shown and not leaks(shown), shown
    assert client.display_url == "http://grafana.lan:3000"


async def test_a_failed_delivery_stores_no_credential_from_the_echoed_headers(make_settings: Any) -> None:
    seen: list[httpx.Request] = []
    settings = make_settings()
    client = GrafanaClient(URL, token="glsa_token_value_123", transport=echoing(seen), retries=0)
    report = sample_report()
    try:
        with pytest.raises(DeliveryError) as caught:
            await deliver(report, client, settings)
    finally:
        await client.aclose()
    stored = caught.value.report
    assert stored.delivery_error and "400" in stored.delivery_error
    assert not leaks(stored.model_dump_json())


def test_logs_mask_url_credentials_in_every_form(make_settings: Any) -> None:
    stream = io.StringIO()
    configure_logging(make_settings(grafana={"url": URL, "token": "glsa_token_value_123"}), stream=stream)
    try:
        logging.getLogger("test.creds").warning(
            "upstream said %s", json.dumps({"Authorization": f"Basic {BASIC}", "raw": f"{USER}:{PASSWORD}"})
        )
    finally:
        logging.getLogger().handlers.clear()
    line = stream.getvalue()
    assert "upstream said" in line and not leaks(line), line


def test_ask_redactor_masks_url_credentials_and_basic_pairs(make_settings: Any) -> None:
    settings = make_settings(
        grafana={"url": "http://grafana-user:grafana-secret@grafana.lan", "token": "glsa_token_value_123"},
        prometheus={"url": "http://prom.lan:9090", "username": "prom", "password": "prom-password"},
    )
    redactor = Redactor(secret_values(settings))
    grafana_basic = base64.b64encode(b"grafana-user:grafana-secret").decode()
    prom_basic = base64.b64encode(b"prom:prom-password").decode()
    text = f"a {grafana_basic} b grafana-user:grafana-secret c {prom_basic} d"
    assert redactor.redact(text) == "a [redacted] b [redacted] c [redacted] d"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://grafana.lan", ("http://grafana.lan", None, None)),
        ("http://u:p%40ss@h:3000/x", ("http://h:3000/x", "u", "p@ss")),
        ("http://only-user@h", ("http://h", "only-user", None)),
        ("http://u:@h", ("http://h", "u", "")),
    ],
)
def test_split_userinfo(url: str, expected: tuple[str, str | None, str | None]) -> None:
    assert split_userinfo(url) == expected


def test_every_form_of_a_url_credential_is_listed() -> None:
    forms = credential_forms(url_secret_forms("http://u:p%40ssword@h"))
    basic = base64.b64encode(b"u:p@ssword").decode()
    assert {"p@ssword", "p%40ssword", "u:p@ssword", basic} <= set(forms)
    assert forms == sorted(forms, key=len, reverse=True)
