"""How many requests the Proxmox VE client spends: the cluster listing and task answers are shared for a few
seconds, and tasks of a recent window come from one ``/cluster/tasks`` request whatever the cluster's size."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.proxmox import ACTIVE_TASKS, FakeProxmox
from tools.errors import SourceError
from tools.proxmox import ProxmoxClient
from tools.proxmox_models import Task
from tools.ttl_cache import TtlCache

T0 = 1_714_557_600
HOUR = 3600
RESOURCES = "/api2/json/cluster/resources"
CLUSTER_TASKS = "/api2/json/cluster/tasks"


def cluster(nodes: int, *, tasks_per_node: int = 30, every_s: int = 1800) -> FakeProxmox:
    """``nodes`` nodes, each with a guest and a task every ``every_s`` back from T0 (the oldest days ago)."""
    pve = FakeProxmox()
    for n in range(nodes):
        pve.add_node(f"pve{n}")
        pve.add_guest(100 + n, f"guest{n}", node=f"pve{n}", ips=[f"10.0.0.{n + 10}"])
        for i in range(tasks_per_node):
            start = T0 - i * every_s - n
            pve.add_task(f"pve{n}", "qmsnapshot", vmid=100 + n, starttime=start, endtime=start + 60)
    return pve


def node_paths(pve: FakeProxmox) -> list[str]:
    return [p for p in pve.paths() if p.startswith("/api2/json/nodes/")]


async def test_concurrent_callers_share_one_cluster_listing() -> None:
    pve = cluster(3)
    async with pve.client() as client:
        results = await asyncio.gather(
            client.nodes(), client.guests(), client.find_guest("guest1"), client.find_guest(102), client.nodes()
        )
    assert pve.paths() == [RESOURCES]
    assert len(results[0]) == 3 and len(results[1]) == 3
    assert results[2] is not None and results[2].guest.node == "pve1"


async def test_the_cluster_listing_is_asked_again_once_it_is_older_than_its_ttl() -> None:
    pve = cluster(2)
    async with pve.client(resources_ttl_s=0.2) as client:
        await client.nodes()
        pve.add_guest(150, "fresh", node="pve0")
        assert await client.find_guest("fresh") is None, "within the ttl the listing is reused"
        await asyncio.sleep(0.3)
        match = await client.find_guest("fresh")
    assert match is not None and match.guest.vmid == 150
    assert pve.paths() == [RESOURCES, RESOURCES]


async def test_a_zero_ttl_asks_every_time() -> None:
    pve = cluster(2)
    async with pve.client(resources_ttl_s=0) as client:
        await client.nodes()
        await client.nodes()
    assert pve.paths() == [RESOURCES, RESOURCES]


async def test_a_failed_listing_is_not_kept() -> None:
    pve = cluster(2)
    async with pve.client(retries=0) as client:
        pve.fail_next(status=503)
        with pytest.raises(SourceError):
            await client.nodes()
        assert len(await client.nodes()) == 2
    assert pve.paths() == [RESOURCES, RESOURCES]


async def test_tasks_of_a_recent_window_cost_one_task_request_on_eighteen_nodes() -> None:
    pve = cluster(18)
    async with pve.client() as client:
        tasks = await client.tasks(since_s=T0 - HOUR, until_s=T0, limit=500)
        backups = await client.tasks(since_s=T0 - 12 * HOUR, limit=500)
    assert pve.paths().count(CLUSTER_TASKS) == 1
    assert node_paths(pve) == []
    assert pve.paths().count(RESOURCES) == 1
    # per node: the two that started within the hour, and the one that started an hour ago and ran into it
    assert len(tasks) == 18 * 3 and {t.node for t in tasks} == {f"pve{n}" for n in range(18)}
    assert len(backups) == 18 * 25
    assert [t.starttime for t in tasks] == sorted((t.starttime for t in tasks), reverse=True)


async def test_a_window_older_than_a_nodes_share_of_the_cluster_list_asks_that_node_directly() -> None:
    pve = cluster(3, every_s=60)  # pve1 etc. keep only their latest 25 tasks (25 minutes) in /cluster/tasks
    pve.add_node("quiet")
    pve.add_task("quiet", "aptupdate", starttime=T0 - 30 * HOUR, endtime=T0 - 30 * HOUR + 20)
    async with pve.client() as client:
        tasks = await client.tasks(since_s=T0 - HOUR, until_s=T0, limit=500)
    assert sorted(node_paths(pve)) == [f"/api2/json/nodes/pve{n}/tasks" for n in range(3)]
    assert len(tasks) == 3 * 30, "every task of the hour, also those past the cluster list's 25 per node"
    assert all(r.url.params["since"] == str(T0 - HOUR) for r in pve.requests if "/nodes/" in r.url.path)
    assert all(r.url.params["source"] == "all" for r in pve.requests if "/nodes/" in r.url.path)


async def test_only_online_nodes_whose_full_share_starts_after_the_window_are_asked_directly() -> None:
    pve = cluster(2)  # 25 tasks each in the list, reaching back 12 hours
    pve.add_node("new")  # no task at all
    pve.add_node("few")
    pve.add_task("few", "qmstart", vmid=100, starttime=T0 - 600, endtime=T0 - 590)
    pve.add_node("busy")
    pve.add_node("down", online=False)
    for i in range(30):
        pve.add_task("busy", "qmsnapshot", starttime=T0 - i * 60, endtime=T0 - i * 60 + 5)
        pve.add_task("down", "qmsnapshot", starttime=T0 - i * 60, endtime=T0 - i * 60 + 5)
    async with pve.client() as client:
        tasks = await client.tasks(since_s=T0 - HOUR, until_s=T0, limit=500)
    assert node_paths(pve) == ["/api2/json/nodes/busy/tasks"]
    params = next(r.url.params for r in pve.requests if r.url.path.endswith("/busy/tasks"))
    assert (params["since"], params["until"], params["source"]) == (str(T0 - HOUR), str(T0), "all")
    by_node = {n: sum(1 for t in tasks if t.node == n) for n in ("pve0", "few", "busy", "down")}
    assert by_node == {"pve0": 3, "few": 1, "busy": 30, "down": 25}


async def test_two_checks_asking_for_the_same_window_share_one_answer() -> None:
    pve = cluster(3, every_s=60)
    async with pve.client() as client:
        first, second = await asyncio.gather(
            client.tasks(since_s=T0 - HOUR, until_s=T0, limit=200),
            client.tasks(since_s=T0 - HOUR, until_s=T0, limit=200),
        )
        again = await client.tasks(since_s=T0 - HOUR, until_s=T0, limit=200)
    assert first == second == again
    assert pve.paths().count(CLUSTER_TASKS) == 1
    assert len(node_paths(pve)) == 3, "one per node whose share is too short, not one per caller"


async def test_errors_only_keeps_what_pve_counts_as_errors() -> None:
    pve = FakeProxmox()
    pve.add_node("pve1")
    pve.add_task("pve1", "vzdump", vmid=101, starttime=T0 - 2 * HOUR, endtime=T0 - 2 * HOUR + 10)
    pve.add_task("pve1", "vzdump", vmid=101, starttime=T0 - 600, endtime=T0 - 500, status="job errors")
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 400, endtime=T0 - 300, status="WARNINGS: 2")
    pve.add_task("pve1", "qmstart", vmid=102, starttime=T0 - 200, endtime=T0 - 190)
    pve.add_task("pve1", "vzdump", vmid=103, starttime=T0 - 100)
    async with pve.client() as client:
        failed = await client.tasks(since_s=T0 - HOUR, until_s=T0, errors_only=True)
        direct = await client.node_tasks("pve1", since_s=T0 - HOUR, until_s=T0, errors_only=True)
    assert [t.status for t in failed] == ["WARNINGS: 2", "job errors"]
    assert [t.upid for t in failed] == [t.upid for t in direct]
    assert node_paths(pve) == ["/api2/json/nodes/pve1/tasks"], "only the direct call"


async def test_the_fake_cluster_list_holds_running_tasks_and_the_newest_finished_per_node() -> None:
    pve = cluster(2, tasks_per_node=40, every_s=60)
    pve.add_task("pve0", "vzmigrate", vmid=100, starttime=T0 - 5000)
    async with pve.client() as client:
        recent = await client.cluster_tasks(since_s=0, limit=500)
    per_node = {n: [t for t in recent if t.node == n] for n in ("pve0", "pve1")}
    assert len(per_node["pve0"]) == len(per_node["pve1"]) == ACTIVE_TASKS
    assert any(t.running for t in per_node["pve0"]), "a running task stays listed however old"
    assert min(t.starttime for t in per_node["pve1"]) == T0 - 24 * 60 - 1


async def test_find_guest_without_lookups_answers_from_the_listing_alone() -> None:
    pve = cluster(3)
    async with pve.client() as client:
        assert await client.find_guest("10.0.0.11:9100", max_lookups=0) is None
        by_name = await client.find_guest("guest2.lan:9100", max_lookups=0)
        assert await client.find_guest("10.0.0.11:9100") is not None
        cached = await client.find_guest("10.0.0.11", max_lookups=0)
    assert pve.paths().count(RESOURCES) == 1
    assert by_name is not None and by_name.guest.vmid == 102
    assert cached is not None and cached.matched_by == "cached-ip"


def ground_truth(pve: FakeProxmox, since_s: int, until_s: int) -> set[str]:
    return {t["upid"] for t in pve.tasks if since_s <= t["starttime"] <= until_s}


def overlaps(task: Task, since_s: int, until_s: int) -> bool:
    return task.starttime <= until_s and (task.endtime is None or task.endtime >= since_s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(min_value=0, max_value=45), min_size=1, max_size=5),
    spacing=st.integers(min_value=30, max_value=4 * HOUR),
    since_back=st.integers(min_value=0, max_value=48 * HOUR),
    length=st.integers(min_value=60, max_value=24 * HOUR),
)
def test_tasks_are_the_same_as_asking_every_node(counts: list[int], spacing: int, since_back: int, length: int) -> None:
    pve = FakeProxmox()
    for n, count in enumerate(counts):
        pve.add_node(f"pve{n}")
        for i in range(count):
            start = T0 - i * spacing - n * 7
            pve.add_task(f"pve{n}", "vzdump", vmid=100 + n, starttime=start, endtime=start + spacing // 2)
    since_s = T0 - since_back
    until_s = since_s + length

    async def run() -> list[Task]:
        client: ProxmoxClient = pve.client()
        async with client:
            return await client.tasks(since_s=since_s, until_s=until_s, limit=500)

    tasks = asyncio.run(run())
    upids = [t.upid for t in tasks]
    assert len(upids) == len(set(upids))
    assert ground_truth(pve, since_s, until_s) <= set(upids)
    assert all(overlaps(t, since_s, until_s) for t in tasks)


async def test_ttl_cache_loads_once_for_concurrent_callers_and_expires_on_its_clock() -> None:
    now = [100.0]
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return loads

    cache: TtlCache[str, int] = TtlCache(5.0, clock=lambda: now[0])
    assert await asyncio.gather(*(cache.get("k", load) for _ in range(5))) == [1] * 5
    now[0] += 4.9
    assert await cache.get("k", load) == 1
    now[0] += 0.2
    assert await cache.get("k", load) == 2
    assert loads == 2


async def test_ttl_cache_keeps_at_most_its_entry_limit() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=3)

    async def load() -> int:
        return 1

    for key in range(10):
        await cache.get(key, load)
    assert len(cache) == 3
