"""Webhook authentication: every mode good and bad, combinations, and the refusal to run without any."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.intake import api, basic, bearer, grafana_notification, sign
from triage.cli import cmd_serve
from triage.settings import StartupError, load_settings
from webhook.app import create_app

SECRET = "hmac-shared-secret"
STAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"
BODY = json.dumps(grafana_notification()).encode()
JSON = {"Content-Type": "application/json"}


async def send(settings: Any, headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
    async with api(settings) as (_, client):
        return await client.post("/webhook/grafana", content=body, headers={**JSON, **headers})


def only(make_settings: Any, **webhook: Any) -> Any:
    return make_settings(webhook={"token": None, **webhook})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (bearer(), 202),
        (bearer("wrong-token"), 401),
        (bearer("test-webhook-token-and-more"), 401),
        ({"Authorization": "test-webhook-token"}, 401),
        ({}, 401),
    ],
)
async def test_bearer_token(make_settings: Any, redis: Redis, headers: dict[str, str], status: int) -> None:
    response = await send(make_settings(), headers)

    assert response.status_code == status
    if status == 401:
        assert "test-webhook-token" not in response.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (basic("grafana", "s3cret!"), 202),
        (basic("grafana", "wrong"), 401),
        (basic("someone", "s3cret!"), 401),
        ({"Authorization": "Basic not-base64!"}, 401),
        ({}, 401),
    ],
)
async def test_basic_auth(make_settings: Any, redis: Redis, headers: dict[str, str], status: int) -> None:
    settings = only(make_settings, basic_user="grafana", basic_password="s3cret!")

    assert (await send(settings, headers)).status_code == status


async def test_hmac_signature_over_the_raw_body(make_settings: Any, redis: Redis) -> None:
    settings = only(make_settings, hmac_secret=SECRET)
    good = {"X-Grafana-Alerting-Signature": sign(SECRET, BODY)}

    assert (await send(settings, good)).status_code == 202
    assert (await send(settings, {"X-Grafana-Alerting-Signature": sign("other", BODY)})).status_code == 401
    assert (await send(settings, {})).status_code == 401
    tampered = BODY.replace(b"HighCPU", b"LowCPU!")
    assert (await send(settings, good, tampered)).status_code == 401


@pytest.mark.parametrize("header", ["X-Grafana-Alert-Signature", "X-Grafana-Alerting-Signature"])
async def test_hmac_is_accepted_under_both_header_names_grafana_uses(
    make_settings: Any, redis: Redis, header: str
) -> None:
    settings = only(make_settings, hmac_secret=SECRET)

    assert (await send(settings, {header: sign(SECRET, BODY)})).status_code == 202
    assert (await send(settings, {header: sign("other", BODY)})).status_code == 401


async def test_hmac_header_can_be_set_to_another_name(make_settings: Any, redis: Redis) -> None:
    settings = only(make_settings, hmac_secret=SECRET, hmac_header="X-Homelab-Signature")

    assert (await send(settings, {"X-Homelab-Signature": sign(SECRET, BODY)})).status_code == 202
    # once a name is set, Grafana's default names no longer count
    refused = await send(settings, {"X-Grafana-Alert-Signature": sign(SECRET, BODY)})
    assert refused.status_code == 401
    assert "missing signature header X-Homelab-Signature" in refused.json()["error"]["message"]


async def test_hmac_with_timestamp_inside_the_replay_window(make_settings: Any, redis: Redis) -> None:
    settings = only(make_settings, hmac_secret=SECRET, hmac_timestamp_header=STAMP_HEADER, hmac_replay_window_s=60)
    now = str(int(time.time()))

    fresh = {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, now), STAMP_HEADER: now}
    assert (await send(settings, fresh)).status_code == 202


@pytest.mark.parametrize(
    "case", ["replayed", "future", "signed_without_stamp", "stamp_swapped", "missing_stamp", "not_a_number"]
)
async def test_hmac_with_timestamp_refuses_replays_and_tampering(make_settings: Any, redis: Redis, case: str) -> None:
    settings = only(make_settings, hmac_secret=SECRET, hmac_timestamp_header=STAMP_HEADER, hmac_replay_window_s=60)
    now = int(time.time())
    headers = {
        "replayed": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, str(now - 120)), STAMP_HEADER: str(now - 120)},
        "future": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, str(now + 120)), STAMP_HEADER: str(now + 120)},
        "signed_without_stamp": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY), STAMP_HEADER: str(now)},
        "stamp_swapped": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, str(now - 1)), STAMP_HEADER: str(now)},
        "missing_stamp": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, str(now))},
        "not_a_number": {"X-Grafana-Alerting-Signature": sign(SECRET, BODY, "nan"), STAMP_HEADER: "nan"},
    }[case]

    response = await send(settings, headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_every_configured_method_must_pass(make_settings: Any, redis: Redis) -> None:
    settings = make_settings(webhook={"token": "tok-123456", "hmac_secret": SECRET})
    signature = {"X-Grafana-Alerting-Signature": sign(SECRET, BODY)}

    assert (await send(settings, {**bearer("tok-123456"), **signature})).status_code == 202
    assert (await send(settings, bearer("tok-123456"))).status_code == 401
    assert (await send(settings, signature)).status_code == 401


async def test_bearer_and_basic_together_both_required(make_settings: Any, redis: Redis) -> None:
    settings = make_settings(webhook={"token": "tok-123456", "basic_user": "u", "basic_password": "p"})
    async with api(settings) as (_, client):
        # Grafana sends one Authorization header; two credentials need two headers
        both = httpx.Headers([("Authorization", "Bearer tok-123456"), basic("u", "p").popitem(), *JSON.items()])
        ok = await client.post("/webhook/grafana", content=BODY, headers=both)
        one = await client.post("/webhook/grafana", content=BODY, headers={**JSON, **bearer("tok-123456")})

    assert (ok.status_code, one.status_code) == (202, 401)


async def test_unauthenticated_is_accepted_only_when_explicitly_allowed(make_settings: Any, redis: Redis) -> None:
    settings = only(make_settings, allow_unauthenticated=True)

    assert (await send(settings, {})).status_code == 202


def test_api_refuses_to_start_without_webhook_auth(make_settings: Any) -> None:
    with pytest.raises(StartupError, match="WEBHOOK_ALLOW_UNAUTHENTICATED=true"):
        load_settings(require_webhook_auth=True)
    with pytest.raises(StartupError, match="no webhook authentication"):
        create_app(only(make_settings))


def test_api_starts_without_auth_when_unauthenticated_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_UNAUTHENTICATED", "true")

    assert load_settings(require_webhook_auth=True).webhook.allow_unauthenticated is True


def test_serve_command_refuses_to_start_without_webhook_auth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    cmd_serve.add_arguments(parser)

    with pytest.raises(StartupError, match="no webhook authentication is configured"):
        cmd_serve.run(parser.parse_args(["--port", "1"]))
