"""Redis stops while the API runs: notifications get 503 (never a 2xx), and once Redis is back they are accepted."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx

from reports.payloads import parse_alerts
from reports.store import open_store
from tests.support.intake import api, bearer, grafana_alert, grafana_notification
from tests.support.procs import RedisServer
from triage.worker.arq_settings import build_worker


async def drain(settings: Any) -> None:
    worker = build_worker(settings, burst=True, poll_delay=0.02, handle_signals=False, cron_jobs=[])
    try:
        await worker.main()
    finally:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
            await worker.close()


async def post_until_accepted(client: httpx.AsyncClient, body: dict[str, Any], attempts: int = 50) -> list[int]:
    """What Grafana and Alertmanager do: re-send until a 2xx."""
    statuses = []
    for _ in range(attempts):
        response = await client.post("/webhook/grafana", json=body, headers=bearer())
        statuses.append(response.status_code)
        if response.is_success:
            return statuses
        await asyncio.sleep(0.1)
    return statuses


async def test_redis_outage_answers_503_and_loses_nothing(make_settings: Any, redis_server: RedisServer) -> None:
    settings = make_settings(redis={"redis_url": redis_server.url})
    before = grafana_notification(grafana_alert("Before", fingerprint="before"))
    during = grafana_notification(grafana_alert("During", fingerprint="during"))

    async with api(settings) as (_, client):
        assert (await client.post("/webhook/grafana", json=before, headers=bearer())).status_code == 202
        await drain(settings)

        redis_server.stop()
        refused = await client.post("/webhook/grafana", json=during, headers=bearer())
        resent_known = await client.post("/webhook/grafana", json=before, headers=bearer())
        ready_during = await client.get("/readyz")

        redis_server.start()
        statuses = await post_until_accepted(client, during)
        resend_after = await client.post("/webhook/grafana", json=during, headers=bearer())
    await drain(settings)

    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    # without Redis even a known alert cannot be confirmed as a duplicate: no 2xx
    assert resent_known.status_code == 503
    assert ready_during.status_code == 503
    assert statuses[-1] == 202 and set(statuses[:-1]) <= {503}
    assert resend_after.json()["duplicates"] == 1
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        for body in (before, during):
            alert = parse_alerts("grafana", body)[0]
            assert await store.get(alert.occurrence_key) is not None, alert.alertname
    finally:
        await store.close()
