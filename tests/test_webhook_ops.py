"""Operations endpoints: liveness, readiness, dependency health and Prometheus metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from redis.asyncio import Redis

from tests.support.intake import api, bearer, grafana_alert, grafana_notification
from tests.support.procs import RedisServer, free_port
from triage.constants import HEALTH_CHECK_KEY
from triage.json_logs import configure_logging
from triage.sources import SOURCES
from triage.worker.job_stats import record_job
from webhook.app import all_routers


async def test_healthz_answers_while_redis_is_down(make_settings: Any, redis_server: RedisServer) -> None:
    async with api(make_settings(redis={"redis_url": redis_server.url})) as (_, client):
        redis_server.stop()

        response = await client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_checks_redis_and_the_store(make_settings: Any, redis_server: RedisServer) -> None:
    async with api(make_settings(redis={"redis_url": redis_server.url})) as (_, client):
        ready = await client.get("/readyz")
        redis_server.stop()
        not_ready = await client.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"]["status"] == "healthy"
    assert ready.json()["checks"]["store"]["status"] == "healthy"
    assert not_ready.status_code == 503
    assert not_ready.json()["error"]["code"] == "not_ready"
    assert "redis" in not_ready.json()["error"]["message"]
    assert not_ready.json()["checks"]["store"]["status"] == "healthy"


async def test_health_reports_each_configured_dependency(make_settings: Any, redis: Redis) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(prometheus={"url": dead}, api={"api_health_cache_s": 0})

    async with api(settings) as (_, client):
        without_worker = await client.get("/health")
        await redis.set(HEALTH_CHECK_KEY, "worker alive", ex=60)
        with_worker = await client.get("/health")

    deps = without_worker.json()["dependencies"]
    assert set(deps) == {"redis", "store", "worker", "prometheus"}  # unconfigured sources are not listed
    assert deps["worker"]["status"] == "degraded"
    assert deps["prometheus"]["status"] == "unhealthy"
    assert without_worker.json()["status"] == "unhealthy" and without_worker.status_code == 503
    assert with_worker.json()["dependencies"]["worker"]["status"] == "healthy"


async def test_health_is_healthy_when_every_dependency_answers(make_settings: Any, redis: Redis) -> None:
    async with api(make_settings()) as (_, client):
        await redis.set(HEALTH_CHECK_KEY, "worker alive", ex=60)
        response = await client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


async def test_metrics_count_notifications_alerts_queue_depth_and_jobs(make_settings: Any, redis: Redis) -> None:
    await record_job(redis, "triage_alert", "success", 0.3)
    await record_job(redis, "triage_alert", "failure", 12.0)
    async with api(make_settings()) as (_, client):
        body = grafana_notification(grafana_alert("A", fingerprint="a"), grafana_alert("B", fingerprint="b"))
        await client.post("/webhook/grafana", json=body, headers=bearer())
        await client.post("/webhook/grafana", json=body, headers=bearer())
        await client.post("/webhook/grafana", json=body)
        text = (await client.get("/metrics")).text

    assert (
        sample(text, 'sre_triage_notifications_total{outcome="accepted",receiver="sre-triage",source="grafana"}') == 2
    )
    assert sample(text, 'sre_triage_notifications_total{outcome="unauthorized",receiver="",source="grafana"}') == 1
    assert sample(text, 'sre_triage_alerts_total{outcome="accepted",source="grafana"}') == 2
    assert sample(text, 'sre_triage_alerts_total{outcome="duplicate",source="grafana"}') == 2
    assert sample(text, "sre_triage_queue_depth") == 2
    assert sample(text, 'sre_triage_jobs_total{function="triage_alert",outcome="failure"}') == 1
    assert sample(text, 'sre_triage_job_duration_seconds_bucket{function="triage_alert",le="0.5"}') == 1
    assert sample(text, 'sre_triage_job_duration_seconds_count{function="triage_alert"}') == 2


async def test_receiver_label_values_are_bounded(make_settings: Any, redis: Redis) -> None:
    async with api(make_settings()) as (_, client):
        await asyncio.gather(
            *(
                client.post(
                    "/webhook/grafana", json=grafana_notification(alerts=[], receiver=f"r{i}"), headers=bearer()
                )
                for i in range(60)
            )
        )
        text = (await client.get("/metrics")).text

    receivers = {line.split('receiver="')[1].split('"')[0] for line in text.splitlines() if "receiver=" in line}
    assert len(receivers) == 51 and "other" in receivers


async def test_two_apps_in_one_process_keep_separate_metrics(make_settings: Any, redis: Redis) -> None:
    async with api(make_settings()) as (_, first), api(make_settings()) as (_, second):
        await first.post("/webhook/grafana", json=grafana_notification(), headers=bearer())
        text: str = (await second.get("/metrics")).text

    assert 'outcome="accepted"' not in text


async def test_log_lines_are_json_keyed_by_job_and_without_secrets(make_settings: Any, redis: Redis) -> None:
    settings = make_settings(redis={"redis_url": "redis://:hunter2-password@127.0.0.1:1/0"})
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(settings, stream=stream)
    try:
        logging.getLogger("x").warning("token %s leaked", "test-webhook-token", extra={"job_id": "triage:1"})
        logging.getLogger("x").info("dsn %s", settings.redis.redis_url)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["job_id"] == "triage:1" and lines[0]["level"] == "WARNING"
    assert "test-webhook-token" not in stream.getvalue() and "hunter2-password" not in stream.getvalue()
    assert "[redacted]" in lines[0]["message"] and "[redacted]" in lines[1]["message"]


async def test_each_notification_is_logged_with_its_job_ids_and_fingerprints(
    make_settings: Any, redis: Redis, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="webhook.intake")
    async with api(make_settings()) as (_, client):
        await client.post("/webhook/grafana", json=grafana_notification(), headers=bearer())
        await client.post("/webhook/grafana", json=grafana_notification(), headers=bearer("wrong-token"))

    accepted = next(r for r in caplog.records if r.getMessage() == "notification accepted")
    refused = next(r for r in caplog.records if r.getMessage() == "notification refused")
    assert accepted.jobs[0]["fingerprint"] == "fp-1"
    assert accepted.jobs[0]["job_id"].startswith("triage:")
    assert refused.status == 401
    assert "wrong-token" not in caplog.text and "test-webhook-token" not in caplog.text


async def test_full_api_serves_the_webhooks_next_to_every_other_router(make_settings: Any, redis: Redis) -> None:
    async with api(make_settings(), routers=all_routers) as (app, client):
        response = await client.post("/webhook/grafana", json=grafana_notification(), headers=bearer())
        ready = await client.get("/readyz")

    assert app.state.routers == list(all_routers())
    assert response.status_code == 202 and ready.status_code == 200


async def test_readyz_includes_checks_that_components_register(make_settings: Any, redis: Redis) -> None:
    async def index_missing() -> None:
        raise FileNotFoundError("no index")

    async with api(make_settings()) as (app, client):
        app.state.ready_checks["runbooks"] = index_missing
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["runbooks"]["status"] == "unhealthy"
    assert "runbooks" in response.json()["error"]["message"]


class CountingUpstream:
    """A loopback HTTP server that answers 200 to everything and counts the requests."""

    def __init__(self) -> None:
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> CountingUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_health_probes_the_sources_once_per_cache_period(make_settings: Any, redis: Redis) -> None:
    with CountingUpstream() as upstream:
        settings = make_settings(
            prometheus={"url": upstream.url},
            loki={"url": upstream.url},
            grafana={"url": upstream.url, "token": "glsa_health_token"},
        )
        async with api(settings) as (_, client):
            answers = await asyncio.gather(*(client.get("/health") for _ in range(20)))
            again = await client.get("/health")
    assert {a.json()["dependencies"]["grafana"]["status"] for a in answers} == {"healthy"}
    assert again.json() == answers[0].json()
    assert upstream.requests == 3  # 21 unauthenticated calls, one probe of each of the three sources


async def test_health_lists_every_registered_source(make_settings: Any, redis: Redis) -> None:
    token = {"token_id": "triage@pve!ro", "token_secret": "s3cret"}
    with CountingUpstream() as upstream:
        settings = make_settings(
            prometheus={"url": upstream.url},
            loki={"url": upstream.url},
            grafana={"url": upstream.url, "token": "glsa_health_token"},
            proxmox={"url": upstream.url, **token},
            pbs={"url": upstream.url, **token},
        )
        async with api(settings) as (_, client):
            dependencies = (await client.get("/health")).json()["dependencies"]
    assert {spec.name for spec in SOURCES} <= set(dependencies)
    assert upstream.requests == len(SOURCES)


async def test_the_api_docs_are_served_only_when_asked_for(make_settings: Any, redis: Redis) -> None:
    async with api(make_settings()) as (_, client):
        default = [(await client.get(path)).status_code for path in ("/docs", "/openapi.json")]
    async with api(make_settings(api={"api_docs": True})) as (_, client):
        docs = await client.get("/docs")
        schema = await client.get("/openapi.json")
    assert default == [404, 404]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert schema.json()["info"]["title"] == "sre-triage"
