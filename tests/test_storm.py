"""Storms: alerts of one group starting together are triaged once, with one LLM call, and linked to each other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from reports.models import Alert
from reports.store import open_store
from tests.support.engine import EngineWorld, make_alert
from tests.support.llm_server import RecordedRequest, Reply, ScriptedLLM
from triage import job_triage, storm
from triage.analysis import Analyser
from triage.budget import RedisTokenBudget
from triage.plan import make_plan
from triage.settings import LlmSettings, Settings, TriageSettings


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    def explain(request: RecordedRequest) -> Reply:
        answer = {"summary": "Node pve2 is down; its guests went with it.", "hypotheses": [], "next_steps": []}
        return Reply.structured_output(answer, delay_s=0.3)

    with ScriptedLLM(responder=explain) as server:
        yield server


@pytest.fixture
async def storm_ctx(
    make_settings: Callable[..., Settings], redis: Redis, llm: ScriptedLLM
) -> AsyncIterator[tuple[dict[str, Any], EngineWorld]]:
    world = EngineWorld()
    world.proxmox.add_node("pve2", online=False)
    for vmid in range(200, 212):
        world.proxmox.add_guest(vmid, f"guest{vmid}", node="pve2")
    settings = make_settings(triage={"storm_wait_s": 10})
    store = open_store(settings.storage.database_url)
    await store.init()
    deps = world.deps("proxmox", "grafana", store=store)
    deps.analyser = Analyser(
        LlmSettings(openai_base_url=llm.url, llm_model="test-model", llm_timeout_s=5), RedisTokenBudget(redis)
    )
    yield {"settings": settings, "store": store, "redis": redis, "deps": deps}, world
    await world.aclose()
    await store.close()


def member(world: EngineWorld, vmid: int, group_key: str = '{}:{alertname="InstanceDown"}') -> Alert:
    return make_alert(
        {"vmid": str(vmid), "node": "pve2"},
        starts_at=world.ago(2),
        alertname="InstanceDown",
        fingerprint=f"fp-{vmid}",
        group_key=group_key,
    )


async def test_a_storm_of_twelve_alerts_makes_one_llm_call_and_links_every_report(
    storm_ctx: tuple[dict[str, Any], EngineWorld], llm: ScriptedLLM
) -> None:
    ctx, world = storm_ctx
    store = ctx["store"]
    alerts = [member(world, vmid) for vmid in range(200, 212)]
    received = [await store.record_alert(a) for a in alerts]
    reports = await asyncio.gather(*(job_triage.triage_and_deliver(ctx, r) for r in received))
    assert llm.calls == 1
    group_ids = {r.group_id for r in reports if r.group_id}
    assert len(group_ids) == 1
    leader = await store.get(group_ids.pop())
    assert leader is not None and leader.llm is not None and leader.llm.calls == 1
    assert sorted(leader.group_members) == sorted(r.id for r in reports if r.id != leader.id)
    followers = [await store.get(r.id) for r in reports if r.id != leader.id]
    assert all(
        f is not None and f.group_id == leader.id and f.summary.startswith("Part of an alert storm") for f in followers
    )
    assert all(f is not None and f.evidence == leader.evidence for f in followers)
    assert any(e.title == "Proxmox node pve2 is offline" for e in leader.evidence)
    assert len(world.grafana.annotations) == 12  # every alert still gets its own annotation


async def test_alerts_of_different_groups_are_triaged_separately(
    storm_ctx: tuple[dict[str, Any], EngineWorld], llm: ScriptedLLM
) -> None:
    ctx, world = storm_ctx
    first = await ctx["store"].record_alert(member(world, 200, group_key="a"))
    second = await ctx["store"].record_alert(member(world, 201, group_key="b"))
    reports = await asyncio.gather(*(job_triage.triage_and_deliver(ctx, r) for r in (first, second)))
    assert llm.calls == 2
    assert all(r.group_id is None for r in reports)


async def test_a_follower_whose_leader_never_finishes_triages_itself(
    storm_ctx: tuple[dict[str, Any], EngineWorld], llm: ScriptedLLM, redis: Redis
) -> None:
    ctx, world = storm_ctx
    ctx["settings"] = ctx["settings"].model_copy(update={"triage": TriageSettings(storm_wait_s=0.5)})
    alert = member(world, 205)
    plan = make_plan(alert, ctx["settings"].triage)
    dead_leader = member(world, 299)
    assert await storm.join(redis, dead_leader, plan, 60)  # a leader that then died
    report = await job_triage.triage_and_deliver(ctx, await ctx["store"].record_alert(alert))
    assert report.group_id is None and report.llm is not None and report.llm.calls == 1
    assert llm.calls == 1


def test_storm_basis_prefers_the_notification_group_then_the_node_or_host() -> None:
    world = EngineWorld()
    settings = TriageSettings()
    grouped = member(world, 1)
    assert storm.storm_basis(grouped, make_plan(grouped, settings)) == 'group:{}:{alertname="InstanceDown"}'
    by_node = make_alert({"node": "PVE2", "vmid": "1"}, starts_at=world.ago(1))
    assert storm.storm_basis(by_node, make_plan(by_node, settings)) == "host:pve2"
    nothing = make_alert({"severity": "page"}, starts_at=world.ago(1))
    assert storm.storm_basis(nothing, make_plan(nothing, settings)) is None
