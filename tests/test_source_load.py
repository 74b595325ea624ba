"""The per-alert load figures (bench/source_load.py): the script runs, and one alert stays cheap for the sources."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

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

    source_load.register("pbs", plan)
    try:
        assert source_load.PLANS["pbs"] is plan
    finally:
        del source_load.PLANS["pbs"]
