"""Webhook intake against a real Redis: notifications become exactly one arq job per alert occurrence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.jobs import Job
from redis.asyncio import Redis

from tests.support.intake import (
    api,
    bearer,
    grafana_alert,
    grafana_notification,
    load_payload,
    queued_job_ids,
)
from triage.constants import JOB_RESOLVE, JOB_TRIAGE, QUEUE_NAME, RESOLVE_JOB_PREFIX, TRIAGE_JOB_PREFIX
from triage.worker.queue import load_job, queue_client


@pytest.fixture
async def client(make_settings: Any, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with api(make_settings()) as (_, client):
        yield client


async def post(client: httpx.AsyncClient, body: Any, path: str = "/webhook/grafana") -> httpx.Response:
    return await client.post(path, json=body, headers=bearer())


async def test_official_grafana_example_enqueues_one_triage_job_per_alert(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    response = await post(client, load_payload("grafana_docs_example.json"))

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    ids = [job["id"] for job in body["jobs"]]
    assert all(i.startswith(TRIAGE_JOB_PREFIX) for i in ids)
    assert await queued_job_ids(redis) == sorted(ids)
    stored = load_job(await redis.get(f"arq:job:{ids[0]}"))
    assert stored["f"] == JOB_TRIAGE
    assert stored["a"][0]["fingerprint"] == "c6eadffa33fcdf37"
    assert stored["a"][0]["ends_at"] is None


async def test_official_alertmanager_examples_are_accepted(client: httpx.AsyncClient, redis: Redis) -> None:
    for name in ("alertmanager_v4_example.json", "alertmanager_v4_no_fingerprint_nanos.json"):
        response = await post(client, load_payload(name), "/webhook/alertmanager")
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1
    assert len(await queued_job_ids(redis)) == 2


async def test_duplicate_delivery_is_not_enqueued_twice(client: httpx.AsyncClient, redis: Redis) -> None:
    first = await post(client, grafana_notification())
    again = await post(client, grafana_notification())

    assert first.json()["accepted"] == 1
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert again.json()["jobs"][0]["id"] == first.json()["jobs"][0]["id"]
    assert again.json()["jobs"][0]["duplicate"] is True
    assert len(await queued_job_ids(redis)) == 1


async def test_grafana_group_resend_enqueues_only_the_new_alert(client: httpx.AsyncClient, redis: Redis) -> None:
    await post(client, grafana_notification(grafana_alert("A", fingerprint="a")))

    response = await post(
        client, grafana_notification(grafana_alert("A", fingerprint="a"), grafana_alert("B", fingerprint="b"))
    )

    assert (response.json()["accepted"], response.json()["duplicates"]) == (1, 1)
    assert len(await queued_job_ids(redis)) == 2


async def test_a_new_firing_of_the_same_alert_is_a_new_occurrence(client: httpx.AsyncClient, redis: Redis) -> None:
    await post(client, grafana_notification(grafana_alert(starts_at="2026-11-26T10:00:00Z")))

    response = await post(client, grafana_notification(grafana_alert(starts_at="2026-11-26T12:00:00Z")))

    assert response.json()["accepted"] == 1


async def test_resolved_notification_enqueues_a_resolve_job_for_the_same_occurrence(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    firing = await post(client, grafana_notification(grafana_alert()))
    resolved = await post(
        client, grafana_notification(grafana_alert(status="resolved", ends_at="2026-11-26T10:07:00Z"))
    )
    resolved_again = await post(
        client, grafana_notification(grafana_alert(status="resolved", ends_at="2026-11-26T10:07:00Z"))
    )

    triage_id = firing.json()["jobs"][0]["id"]
    resolve_id = resolved.json()["jobs"][0]["id"]
    assert resolved.json()["accepted"] == 1
    assert resolve_id == RESOLVE_JOB_PREFIX + triage_id.removeprefix(TRIAGE_JOB_PREFIX)
    assert resolved_again.json()["duplicates"] == 1
    job = load_job(await redis.get(f"arq:job:{resolve_id}"))
    assert job["f"] == JOB_RESOLVE
    assert job["a"][0]["ends_at"] == "2026-11-26T10:07:00Z"


async def test_alerts_without_fingerprint_are_deduplicated_by_their_labels(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    body = grafana_notification(grafana_alert(fingerprint=None))

    first = await post(client, body)
    # label order must not matter
    body["alerts"][0]["labels"] = dict(reversed(list(body["alerts"][0]["labels"].items())))
    again = await post(client, body)

    assert first.json()["accepted"] == 1 and again.json()["duplicates"] == 1


async def test_empty_alert_list_is_accepted_with_nothing_enqueued(client: httpx.AsyncClient, redis: Redis) -> None:
    response = await post(client, grafana_notification(alerts=[]))

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicates": 0, "jobs": []}
    assert await queued_job_ids(redis) == []


async def test_truncated_alerts_are_accepted_and_reported(client: httpx.AsyncClient) -> None:
    response = await post(client, load_payload("grafana_source_dashboard_truncated.json"))

    assert response.status_code == 202
    assert response.json()["truncated_alerts"] == 1
    assert response.json()["accepted"] == 2


async def test_duplicates_within_one_notification_are_enqueued_once(client: httpx.AsyncClient, redis: Redis) -> None:
    response = await post(client, grafana_notification(grafana_alert(), grafana_alert()))

    assert (response.json()["accepted"], response.json()["duplicates"]) == (1, 1)
    assert len(await queued_job_ids(redis)) == 1


async def test_charset_and_json_suffix_content_types_are_json(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.grafana+json"):
        response = await client.post(
            "/webhook/grafana",
            content=json.dumps(grafana_notification()).encode(),
            headers={**bearer(), "Content-Type": content_type},
        )
        assert response.status_code == 202, content_type


async def test_enqueued_job_is_the_job_arq_would_write(client: httpx.AsyncClient, redis: Redis, redis_url: str) -> None:
    response = await post(client, grafana_notification())
    job_id = response.json()["jobs"][0]["id"]

    queue = queue_client(redis_url)
    try:
        info = await Job(job_id, queue, _queue_name=QUEUE_NAME, _deserializer=load_job).info()
        # arq's own enqueue sees the id as taken: both paths share one dedup rule
        again = await queue.enqueue_job(JOB_TRIAGE, {}, _job_id=job_id)
    finally:
        await queue.aclose(close_connection_pool=True)

    assert info is not None and info.function == JOB_TRIAGE
    assert info.args[0]["fingerprint"] == "fp-1"
    assert again is None
    ttl_ms = await redis.pttl(f"arq:job:{job_id}")
    assert ttl_ms > 6 * 24 * 3600 * 1000  # a queued job outlives a long worker outage
