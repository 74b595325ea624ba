"""A node failure's 50-alert storm through the real worker: one storm of the failed node, whatever the sender's
group keys, so a few LLM calls."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.scenarios import select
from tests.scenarios.runner import Suite, make_deps
from tests.scenarios.storm import STORM_SIZE, storm_alerts
from tests.scenarios.worker_run import drain, enqueue
from tests.support.llm_server import ScriptedLLM
from triage.settings import load_settings

MAX_STORM_LLM_CALLS = 5


@pytest.mark.slow
async def test_a_50_alert_node_storm_in_four_notification_groups_is_one_storm_of_the_failed_node(
    suite: Suite, llm: ScriptedLLM, redis: Redis, redis_url: str
) -> None:
    (scenario,) = select(["node_down_storm"])
    world = await suite.world(scenario, tag="-storm-test")
    try:
        settings = load_settings(
            redis={"redis_url": redis_url, "worker_max_jobs": 8},
            llm={"openai_base_url": llm.url, "openai_api_key": "test", "llm_model": "test-model"},
            storage={"database_url": "sqlite:///unused.db"},
        )
        alerts = storm_alerts(world.anchor, group_keys=True)
        calls_before = llm.calls
        await enqueue(redis_url, alerts)
        run = await drain(settings, world.store, lambda analyser: make_deps(world, analyser))
        reports = [await world.store.get(a.occurrence_key) for a in alerts]
    finally:
        await world.aclose()
    # the worker's start-up cron job (report retention) counts as one more completed job
    assert run.complete >= STORM_SIZE and run.failed == 0
    assert llm.calls - calls_before <= MAX_STORM_LLM_CALLS
    assert all(r is not None and r.evidence and r.summary for r in reports)
    # ProxmoxNodeDown, TargetDown, ProxmoxGuestNotRunning and HttpProbeFailed come in four groups; pve-j3 is offline
    assert len({a.group_key for a in alerts}) == 4
    assert len({r.group_id for r in reports if r is not None}) == 1 and None not in {r.group_id for r in reports if r}
    followers = [r for r in reports if r is not None and r.group_id and r.group_id != r.id]
    assert len(followers) == STORM_SIZE - 1
    leader = next(r for r in reports if r is not None and r.id == followers[0].group_id)
    assert {f.id for f in followers} == set(leader.group_members)


@pytest.mark.slow
async def test_a_50_alert_node_storm_without_group_keys_is_grouped_by_the_failed_node(
    suite: Suite, llm: ScriptedLLM, redis: Redis, redis_url: str
) -> None:
    (scenario,) = select(["node_down_storm"])
    world = await suite.world(scenario, tag="-storm-nokeys-test")
    try:
        settings = load_settings(
            redis={"redis_url": redis_url, "worker_max_jobs": 8},
            # langchain-openai keeps one connection pool per base URL and timeout; a timeout of its own keeps this
            # test off the pool the other storm test opened on its (closed) event loop
            llm={"openai_base_url": llm.url, "openai_api_key": "test", "llm_model": "test-model", "llm_timeout_s": 29},
            storage={"database_url": "sqlite:///unused.db"},
        )
        alerts = storm_alerts(world.anchor, group_keys=False)
        calls_before = llm.calls
        await enqueue(redis_url, alerts)
        run = await drain(settings, world.store, lambda analyser: make_deps(world, analyser))
        reports = [await world.store.get(a.occurrence_key) for a in alerts]
    finally:
        await world.aclose()
    assert run.complete >= STORM_SIZE and run.failed == 0
    assert llm.calls - calls_before <= MAX_STORM_LLM_CALLS
    assert all(r is not None and r.evidence and r.summary for r in reports)
    # guests' TargetDown and probe alerts name their own hosts; they join the storm of pve-j3, where they run
    probes = [r for r in reports if r is not None and r.alert.alertname == "HttpProbeFailed"]
    assert probes and len({r.group_id for r in probes}) == 1 and None not in {r.group_id for r in probes}
    assert len({r.group_id for r in reports if r is not None and r.group_id}) <= MAX_STORM_LLM_CALLS
