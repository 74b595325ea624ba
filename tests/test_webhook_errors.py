"""Every error the webhook returns has its status and the one JSON error shape, with a message that helps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from reports.store import StoreError
from tests.support.intake import api, bearer, grafana_notification, queued_job_ids
from webhook.app import create_app, intake_routers


@pytest.fixture
async def client(make_settings: Any, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with api(make_settings(webhook={"max_body_bytes": 4096})) as (_, client):
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    message: str = body["error"]["message"]
    return message


def big_notification() -> bytes:
    body = grafana_notification()
    body["alerts"][0]["annotations"]["description"] = "x" * 10_000
    return json.dumps(body).encode()


async def test_body_over_the_declared_limit_is_refused_with_413(client: httpx.AsyncClient, redis: Redis) -> None:
    response = await client.post(
        "/webhook/grafana", content=big_notification(), headers={**bearer(), "Content-Type": "application/json"}
    )

    assert "4096" in assert_error(response, 413, "payload_too_large")
    assert await queued_job_ids(redis) == []


async def test_streamed_body_without_length_is_cut_off_past_the_limit(client: httpx.AsyncClient) -> None:
    sent: list[int] = []
    data = big_notification()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1024):
            sent.append(start)
            yield data[start : start + 1024]

    response = await client.post(
        "/webhook/grafana", content=chunks(), headers={**bearer(), "Content-Type": "application/json"}
    )

    assert_error(response, 413, "payload_too_large")
    assert "content-length" not in {k.lower() for k in response.request.headers}


async def test_non_json_content_type_is_refused_with_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/grafana", content=b"alertname=x", headers={**bearer(), "Content-Type": "text/plain"}
    )

    assert "application/json" in assert_error(response, 415, "unsupported_media_type")


async def test_missing_content_type_is_refused_with_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/alertmanager", content=b"{}", headers=bearer())

    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b'{"receiver": "\xc3\x28"}', "not valid JSON"),
        (b"NaN", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b"[" * 100_0 + b"]" * 100_0, ""),
    ],
)
async def test_malformed_json_is_refused_with_422(client: httpx.AsyncClient, raw: bytes, expected: str) -> None:
    response = await client.post(
        "/webhook/grafana", content=raw, headers={**bearer(), "Content-Type": "application/json"}
    )

    assert expected in assert_error(response, 422, "invalid_payload")


async def test_invalid_payload_names_the_bad_field(client: httpx.AsyncClient) -> None:
    body = grafana_notification()
    del body["alerts"][0]["startsAt"]

    response = await client.post("/webhook/grafana", json=body, headers=bearer())

    message = assert_error(response, 422, "invalid_payload")
    assert "alerts.0.startsAt" in message and "grafana" in message


async def test_alertmanager_payload_posted_to_the_grafana_endpoint_names_the_version(
    client: httpx.AsyncClient,
) -> None:
    body = grafana_notification(version="4")

    response = await client.post("/webhook/grafana", json=body, headers=bearer())

    assert "version" in assert_error(response, 422, "invalid_payload")


async def test_missing_credentials_are_refused_with_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/grafana", json=grafana_notification())

    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_route_and_wrong_method_use_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.get("/webhook/grafana"), 405, "method_not_allowed")


async def test_redis_down_answers_503_and_counts_the_failure(make_settings: Any, redis_server: Any) -> None:
    settings = make_settings(redis={"redis_url": redis_server.url})
    async with api(settings) as (_, client):
        redis_server.stop()

        response = await client.post("/webhook/grafana", json=grafana_notification(), headers=bearer())
        metrics = (await client.get("/metrics")).text

    assert "retry" in assert_error(response, 503, "unavailable")
    assert 'sre_triage_enqueue_failures_total{source="grafana"} 1.0' in metrics


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RedisConnectionError("redis://:pw@host"), 503, "queue_unavailable"),
        (StoreError("postgresql://user:pw@db"), 503, "store_unavailable"),
        (RuntimeError("postgresql://user:pw@db"), 500, "internal_error"),
    ],
)
async def test_unexpected_errors_use_the_shape_and_never_echo_the_exception(
    make_settings: Any, redis: Redis, exc: Exception, status: int, code: str
) -> None:
    app = create_app(make_settings(), routers=intake_routers)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/boom")

    assert_error(response, status, code)
    assert "pw" not in response.text
