"""Storms: alerts of one group or one failed node starting together are triaged once, with one LLM call, and linked
to each other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from reports.models import Alert
from reports.store import open_store
from tests.support.engine import EngineWorld, make_alert
from tests.support.llm_server import RecordedRequest, Reply, ScriptedLLM
from triage.analysis.analyser import Analyser
from triage.analysis.budget import RedisTokenBudget
from triage.pipeline.plan import make_plan
from triage.settings import LlmSettings, Settings, TriageSettings
from triage.worker import storm, triage_job
from triage.worker.state import WorkerContext


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    def explain(request: RecordedRequest) -> Reply:
        down = {"title": "Node pve2 is down", "confidence": 0.9, "evidence_ids": ["e1"], "next_steps": []}
        answer = {"hypotheses": [down]}
        return Reply.structured_output(answer, delay_s=0.3)

    with ScriptedLLM(responder=explain) as server:
        yield server


@pytest.fixture
async def storm_ctx(
    make_settings: Callable[..., Settings], redis: Redis, llm: ScriptedLLM
) -> AsyncIterator[tuple[WorkerContext, EngineWorld]]:
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
    yield WorkerContext.install({"redis": redis}, settings=settings, store=store, redis=redis, deps=deps), world
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
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM
) -> None:
    worker, world = storm_ctx
    store = worker.store
    alerts = [member(world, vmid) for vmid in range(200, 212)]
    received = [await store.record_alert(a) for a in alerts]
    reports = await asyncio.gather(*(triage_job.triage_and_deliver(worker, r) for r in received))
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


async def test_alerts_of_different_groups_on_a_healthy_node_are_triaged_separately(
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM
) -> None:
    worker, world = storm_ctx
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(300, "guest300", node="pve1")
    guest = make_alert({"vmid": "300", "node": "pve1"}, starts_at=world.ago(2), fingerprint="g", group_key="a")
    cpu = make_alert({"node": "pve1"}, starts_at=world.ago(2), alertname="NodeHighCpu", fingerprint="c", group_key="b")
    received = [await worker.store.record_alert(a) for a in (guest, cpu)]
    reports = await asyncio.gather(*(triage_job.triage_and_deliver(worker, r) for r in received))
    assert llm.calls == 2
    assert all(r.group_id is None for r in reports)


async def test_a_node_storm_in_several_notification_groups_makes_one_llm_call(
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM
) -> None:
    worker, world = storm_ctx
    node_down = make_alert(
        {"node": "pve2"}, starts_at=world.ago(3), alertname="ProxmoxNodeDown", fingerprint="n", group_key="node-down"
    )
    alerts = [node_down, *(member(world, vmid, group_key=f"guest-{vmid % 3}") for vmid in range(200, 212))]
    received = [await worker.store.record_alert(a) for a in alerts]
    reports = await asyncio.gather(*(triage_job.triage_and_deliver(worker, r) for r in received))
    assert llm.calls == 1
    group_ids = {r.group_id for r in reports if r.group_id}
    assert len(group_ids) == 1
    leader = await worker.store.get(group_ids.pop())
    assert leader is not None and sorted(leader.group_members) == sorted(r.id for r in reports if r.id != leader.id)
    assert sum(1 for r in reports if r.summary.startswith("Part of an alert storm")) == 12


async def test_a_follower_whose_leader_never_finishes_triages_itself(
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM, redis: Redis
) -> None:
    worker, world = storm_ctx
    worker = replace(worker, settings=worker.settings.model_copy(update={"triage": TriageSettings(storm_wait_s=0.5)}))
    alert = member(world, 205)
    plan = make_plan(alert, worker.settings.triage)
    dead_leader = member(world, 299)
    assert await storm.join(redis, dead_leader, plan, 60)  # a leader that then died
    report = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))
    assert report.group_id is None and report.llm is not None and report.llm.calls == 1
    assert llm.calls == 1


def test_storm_basis_prefers_a_failed_node_then_the_notification_group_then_the_node_or_host() -> None:
    world = EngineWorld()
    settings = TriageSettings()
    grouped = member(world, 1)
    plan = make_plan(grouped, settings)
    assert storm.storm_basis(grouped, plan) == 'group:{}:{alertname="InstanceDown"}'
    healthy = storm.Located("pve2", is_node=False, failed=False)
    assert storm.storm_basis(grouped, plan, healthy) == 'group:{}:{alertname="InstanceDown"}'
    assert storm.storm_basis(grouped, plan, storm.Located("pve2", is_node=False, failed=True)) == "host:pve2"
    by_node = make_alert({"node": "PVE2", "vmid": "1"}, starts_at=world.ago(1))
    assert storm.storm_basis(by_node, make_plan(by_node, settings)) == "host:pve2"
    exporter = guest_alert(world, 1)
    exporter_plan = make_plan(exporter, settings)
    assert storm.storm_basis(exporter, exporter_plan, healthy) == "host:guest1"
    assert storm.storm_basis(exporter, exporter_plan, storm.Located("pve2", is_node=True, failed=False)) == "host:pve2"
    nothing = make_alert({"severity": "page"}, starts_at=world.ago(1))
    assert storm.storm_basis(nothing, make_plan(nothing, settings)) is None


def guest_alert(world: EngineWorld, vmid: int, alertname: str = "TargetDown") -> Alert:
    """What a guest's exporter alert looks like: no group key, no node label, only the guest's own host."""
    return make_alert(
        {"instance": f"guest{vmid}:9100", "job": "node"},
        starts_at=world.ago(2),
        alertname=alertname,
        fingerprint=f"fp-{alertname}-{vmid}",
    )


def failed_node_world() -> EngineWorld:
    """Node pve2 offline with guests 200-205 in a state PVE no longer knows; pve1 online."""
    world = EngineWorld()
    world.proxmox.add_node("pve2", online=False)
    world.proxmox.add_node("pve1")
    for vmid in range(200, 206):
        world.proxmox.add_guest(vmid, f"guest{vmid}", node="pve2", status="unknown")
    return world


async def join_together(redis: Redis, world: EngineWorld, alerts: list[Alert]) -> list[storm.Storm | None]:
    """Every alert joins its storm at once, through one Proxmox client, as concurrent worker jobs would."""
    settings = TriageSettings()
    async with world.proxmox.client() as proxmox:
        return list(
            await asyncio.gather(*(storm.join(redis, a, make_plan(a, settings), 60, proxmox=proxmox) for a in alerts))
        )


async def test_guest_alerts_without_group_keys_join_the_storm_of_their_failed_node(redis: Redis) -> None:
    world = failed_node_world()
    node_alert = make_alert({"node": "pve2"}, starts_at=world.ago(3), alertname="ProxmoxNodeDown", fingerprint="n")
    alerts = [node_alert, *(guest_alert(world, vmid) for vmid in range(200, 206))]
    alerts.append(guest_alert(world, 203, alertname="HttpProbeFailed"))
    storms = await join_together(redis, world, alerts)
    assert all(s is not None for s in storms)
    assert len({s.key for s in storms if s}) == 1
    assert sum(1 for s in storms if s and s.leads) == 1
    assert world.proxmox.paths() == ["/api2/json/cluster/resources"], "one listing for the whole storm"


async def test_guest_alerts_on_a_healthy_node_keep_storms_of_their_own(redis: Redis) -> None:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    for vmid in (300, 301):
        world.proxmox.add_guest(vmid, f"guest{vmid}", node="pve1")
    settings = TriageSettings()
    alerts = [guest_alert(world, 300), guest_alert(world, 301)]
    async with world.proxmox.client() as proxmox:
        first, second = [await storm.join(redis, a, make_plan(a, settings), 60, proxmox=proxmox) for a in alerts]
    assert first is not None and second is not None
    assert first.key != second.key and first.leads and second.leads


async def test_when_proxmox_cannot_answer_guest_alerts_fall_back_to_their_own_host(redis: Redis) -> None:
    world = EngineWorld()
    world.proxmox.add_node("pve2", online=False)
    world.proxmox.add_guest(200, "guest200", node="pve2", status="unknown")
    alert = guest_alert(world, 200)
    plan = make_plan(alert, TriageSettings())
    async with world.proxmox.client(retries=0) as proxmox:
        world.proxmox.fail_next(status=503)
        assert await storm.node_of(alert, plan, proxmox) is None
        located = await storm.node_of(alert, plan, proxmox)
    assert located == storm.Located("pve2", is_node=False, failed=True), "the next alert asks again"
    assert storm.storm_basis(alert, plan, None) == "host:guest200"
    assert storm.storm_basis(alert, plan, located) == "host:pve2"


def grouped(alert: Alert) -> Alert:
    """The alert as Alertmanager sends it under ``group_by: [alertname]``."""
    return alert.model_copy(update={"group_key": f'{{}}:{{alertname="{alert.alertname}"}}'})


async def test_alerts_of_different_groups_about_a_failed_node_and_its_guests_make_one_storm(redis: Redis) -> None:
    world = failed_node_world()
    world.proxmox.add_guest(206, "guest206", node="pve1")
    alerts = [
        make_alert({"node": "pve2"}, starts_at=world.ago(3), alertname="ProxmoxNodeDown", fingerprint="n"),
        make_alert(
            {"instance": "pve2:9100", "job": "node"}, starts_at=world.ago(2), alertname="TargetDown", fingerprint="e"
        ),
        *(guest_alert(world, vmid) for vmid in range(200, 206)),
        guest_alert(world, 203, alertname="HttpProbeFailed").model_copy(
            update={"labels": {"instance": "https://guest203.lab.example", "job": "blackbox"}}
        ),
        make_alert(
            {"id": "qemu/204", "node": "pve2"},
            starts_at=world.ago(2),
            alertname="ProxmoxGuestNotRunning",
            fingerprint="r",
        ),
        # HA already restarted this one on pve1; the alert still names the node it went down with
        make_alert(
            {"id": "qemu/206", "node": "pve2"},
            starts_at=world.ago(2),
            alertname="ProxmoxGuestNotRunning",
            fingerprint="ha",
        ),
    ]
    alerts = [grouped(a) for a in alerts]
    assert len({a.group_key for a in alerts}) == 4
    storms = await join_together(redis, world, alerts)
    assert all(s is not None for s in storms)
    assert len({s.key for s in storms if s}) == 1
    assert sum(1 for s in storms if s and s.leads) == 1
    assert world.proxmox.paths() == ["/api2/json/cluster/resources"], "one listing for the whole storm"


async def test_alerts_of_different_groups_on_an_online_node_keep_their_groups(redis: Redis) -> None:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    world.proxmox.add_node("pve3")
    for vmid in (300, 301):
        world.proxmox.add_guest(vmid, f"guest{vmid}", node="pve1")
    settings = TriageSettings()
    cpu = make_alert({"node": "pve1"}, starts_at=world.ago(2), alertname="NodeHighCpu", fingerprint="cpu1")
    alerts = [
        cpu,
        make_alert({"instance": "pve1:9100"}, starts_at=world.ago(2), alertname="NodeMemoryHigh", fingerprint="mem1"),
        guest_alert(world, 300),
        guest_alert(world, 301, alertname="HttpProbeFailed"),
        make_alert(
            {"id": "qemu/300", "node": "pve1"},
            starts_at=world.ago(2),
            alertname="ProxmoxGuestNotRunning",
            fingerprint="r",
        ),
        guest_alert(world, 999, alertname="ServiceDown"),  # nothing PVE knows
    ]
    alerts = [grouped(a) for a in alerts]
    async with world.proxmox.client() as proxmox:
        for alert in alerts:
            plan = make_plan(alert, settings)
            assert storm.storm_basis(alert, plan, await storm.node_of(alert, plan, proxmox)) == (
                f"group:{alert.group_key}"
            ), alert.alertname
        storms = [await storm.join(redis, a, make_plan(a, settings), 60, proxmox=proxmox) for a in alerts]
        other_cpu = grouped(
            make_alert({"node": "pve3"}, starts_at=world.ago(1), alertname="NodeHighCpu", fingerprint="c3")
        )
        same_group = await storm.join(redis, other_cpu, make_plan(other_cpu, settings), 60, proxmox=proxmox)
    assert all(s is not None and s.leads for s in storms)
    assert len({s.key for s in storms if s}) == len(alerts)
    assert same_group is not None and not same_group.leads and same_group.key == storms[0].key


async def test_a_lost_guest_with_a_group_key_joins_its_node_storm_even_while_the_node_looks_online() -> None:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(300, "guest300", node="pve1", status="unknown")
    alert = grouped(guest_alert(world, 300))
    plan = make_plan(alert, TriageSettings())
    async with world.proxmox.client() as proxmox:
        located = await storm.node_of(alert, plan, proxmox)
    assert storm.storm_basis(alert, plan, located) == "host:pve1"


async def test_when_proxmox_fails_or_is_slow_a_grouped_alert_keeps_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = EngineWorld()
    world.proxmox.add_node("pve2", online=False)
    world.proxmox.add_guest(200, "guest200", node="pve2", status="unknown")
    alert = grouped(guest_alert(world, 200))
    plan = make_plan(alert, TriageSettings())
    group = 'group:{}:{alertname="TargetDown"}'
    monkeypatch.setattr(storm, "LOCATE_TIMEOUT_S", 0.2)
    async with world.proxmox.client(retries=0) as proxmox:
        assert storm.storm_basis(alert, plan, await storm.node_of(alert, plan, None)) == group
        world.proxmox.fail_next(status=503)
        assert storm.storm_basis(alert, plan, await storm.node_of(alert, plan, proxmox)) == group
        world.proxmox.delay_s = 1.0
        started = time.monotonic()
        assert storm.storm_basis(alert, plan, await storm.node_of(alert, plan, proxmox)) == group
        assert time.monotonic() - started < 0.8, "the look-up is bounded by LOCATE_TIMEOUT_S"
        world.proxmox.delay_s = 0.0
        located = await storm.node_of(alert, plan, proxmox)
    assert storm.storm_basis(alert, plan, located) == "host:pve2", "the next alert asks again"


async def test_a_node_storm_without_group_keys_makes_one_llm_call(
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM
) -> None:
    worker, world = storm_ctx
    for vmid in range(200, 212):
        world.proxmox.guests[vmid]["status"] = "unknown"
    received = [await worker.store.record_alert(guest_alert(world, vmid)) for vmid in range(200, 212)]
    reports = await asyncio.gather(*(triage_job.triage_and_deliver(worker, r) for r in received))
    assert llm.calls == 1
    assert len({r.group_id for r in reports if r.group_id}) == 1
    assert sum(1 for r in reports if r.summary.startswith("Part of an alert storm")) == 11


async def test_a_follower_of_a_node_storm_whose_leader_died_triages_itself(
    storm_ctx: tuple[WorkerContext, EngineWorld], llm: ScriptedLLM, redis: Redis
) -> None:
    worker, world = storm_ctx
    worker = replace(worker, settings=worker.settings.model_copy(update={"triage": TriageSettings(storm_wait_s=0.5)}))
    dead_leader = guest_alert(world, 299)
    world.proxmox.add_guest(299, "guest299", node="pve2", status="unknown")
    proxmox = worker.deps.proxmox
    dead = await storm.join(redis, dead_leader, make_plan(dead_leader, worker.settings.triage), 60, proxmox=proxmox)
    assert dead is not None and dead.leads
    report = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(guest_alert(world, 205)))
    assert report.group_id is None and report.llm is not None and report.llm.calls == 1
    assert llm.calls == 1
