"""The per-alert load figures (bench/source_load.py): the script runs, and one alert stays cheap for the sources."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from tools.proxmox import DEFAULT_MAX_LOOKUPS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def source_load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("source_load", ROOT / "bench" / "source_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["source_load"] = module
    spec.loader.exec_module(module)
    return module


async def test_one_typical_alert_costs_a_handful_of_small_requests(source_load: ModuleType, tmp_path: Path) -> None:
    loads = {load.source: load for load in await source_load.run(tmp_path, 500)}
    prometheus, loki = loads["prometheus"], loads["loki"]
    assert prometheus.by_path == {"/api/v1/rules": 1, "/api/v1/query_range": 5, "/api/v1/query": 1}
    assert loki.by_path == {"/loki/api/v1/query_range": 4}
    assert prometheus.retries == loki.retries == 0
    # the budgets later work must keep: the whole alert under 100 kB from each source
    assert prometheus.bytes_received < 100_000
    assert loki.bytes_received < 100_000


async def test_a_smaller_point_budget_shrinks_what_prometheus_sends(source_load: ModuleType, tmp_path: Path) -> None:
    fine = {load.source: load for load in await source_load.run(tmp_path / "fine", 500)}
    coarse = {load.source: load for load in await source_load.run(tmp_path / "coarse", 100)}
    assert coarse["prometheus"].requests == fine["prometheus"].requests
    assert coarse["prometheus"].bytes_received < fine["prometheus"].bytes_received / 3


def test_sources_are_extended_by_registering_a_plan(source_load: ModuleType) -> None:
    async def plan(client: object, alert: object) -> None:
        return None

    source_load.register("alertmanager", plan)
    try:
        assert source_load.PLANS["alertmanager"] is plan
    finally:
        del source_load.PLANS["alertmanager"]


async def test_the_infrastructure_sources_answer_one_alert_in_a_few_requests(
    source_load: ModuleType, tmp_path: Path
) -> None:
    loads = {load.source: load for load in await source_load.run(tmp_path, 500)}
    grafana, proxmox, pbs = loads["grafana"], loads["proxmox"], loads["pbs"]
    # rule, window annotations, delivery: look-up by tag, create, then the resolve patch of the same annotation
    assert grafana.by_path.pop("/api/v1/provisioning/alert-rules/host-high-cpu") == 1
    assert grafana.by_path.pop("/api/annotations") == 3
    assert list(grafana.by_path.values()) == [1]
    # one cluster listing for guest and nodes; the change window comes from the cluster-wide task list, and only
    # the backup look-back (12 h, past the 25 latest tasks of a node with nightly backups) asks each node once
    assert proxmox.by_path["/cluster/resources"] == 1
    assert {p: n for p, n in proxmox.by_path.items() if p.endswith("/tasks")} == {
        "/cluster/tasks": 1,
        **{f"/nodes/pve{i}/tasks": 1 for i in (1, 2, 3)},
    }
    assert proxmox.by_path["/nodes/pve1/status"] == 1
    assert pbs.by_path == {"/nodes/localhost/tasks": 2, "/status/datastore-usage": 1}
    assert grafana.retries == proxmox.retries == pbs.retries == 0
    for load in (grafana, proxmox, pbs):
        assert load.bytes_received < 100_000, load.source


async def test_finding_a_guest_by_address_is_bounded_and_cached(source_load: ModuleType) -> None:
    rows = await source_load.guest_lookups(datetime.now(UTC))
    by_label = {row.found.split(":")[0]: row for row in rows}
    assert by_label["name"].requests == 1
    assert "by config-ip" in by_label["VM address, no agent, config"].found
    # the guest list, then at most max_lookups per-guest requests, however many guests the cluster has
    assert by_label["unknown address"].requests <= 1 + DEFAULT_MAX_LOOKUPS
    assert by_label["unknown address"].found.endswith("no guest")
    # the address is known and the cluster listing still fresh: no request at all
    assert by_label["same address again (cached)"].requests == 0
