"""The source registry (triage/sources.py): one entry per data source, and everything derived from it."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.loki import Direction, LogEntry, LogQueryResult, LogStream
from tools.loki_patterns import PatternSeries, PatternsUnavailable
from triage.analysis.analyser import Analyser
from triage.deps import Deps, build_deps, close_deps
from triage.log_source import LogSource
from triage.pipeline.checks import CHECKS, SOURCE_SETTINGS, log_errors
from triage.settings import GROUPS, LlmSettings, Settings, StartupError, env_names
from triage.sources import (
    SLOTS,
    SOURCE_BY_NAME,
    SOURCE_TOOL_NAMES,
    SOURCES,
    open_clients,
    slot_of,
    slot_values,
    source_tools,
    sources_in,
)
from webhook.health import source_probes

TOKEN_ID = "triage@pve!ro"

# every source configured: what a client needs besides its URL
ALL: dict[str, dict[str, Any]] = {
    "prometheus": {"url": "http://prometheus.test:9090"},
    "loki": {"url": "http://loki.test:3100"},
    "grafana": {"url": "http://grafana.test:3000", "token": "glsa_test"},
    "proxmox": {"url": "https://pve.test:8006", "token_id": TOKEN_ID, "token_secret": "s3cret-pve"},
    "pbs": {"url": "https://pbs.test:8007", "token_id": TOKEN_ID, "token_secret": "s3cret-pbs"},
}


def test_the_registry_lists_the_sources_once_in_a_fixed_order() -> None:
    assert [spec.name for spec in SOURCES] == ["prometheus", "loki", "grafana", "proxmox", "pbs"]
    assert list(SOURCE_BY_NAME) == [spec.name for spec in SOURCES]
    assert SLOTS == ("prometheus", "logs", "grafana", "proxmox", "pbs")
    assert sources_in("logs") == ("loki",) and slot_of("loki") == "logs" and slot_of("store") == "store"


@pytest.mark.parametrize("spec", SOURCES, ids=lambda spec: spec.name)
def test_every_source_has_a_probe_tools_and_an_enabling_setting(spec: Any) -> None:
    assert spec.health_path.startswith("/")
    assert spec.tool_names and all(name.startswith(f"{spec.name}_") for name in spec.tool_names)
    assert spec.enable_setting in env_names(GROUPS[spec.name])
    assert SOURCE_SETTINGS[spec.name] == spec.enable_setting
    assert spec.title


def test_every_slot_is_a_deps_field_typed_for_its_clients() -> None:
    hints = typing.get_type_hints(Deps)
    assert set(SLOTS) <= {f.name for f in fields(Deps)}
    for spec in SOURCES:
        assert issubclass(spec.client_type, hints[spec.slot]), spec.name


async def test_the_tools_of_each_source_are_its_allowlisted_names(make_settings: Callable[..., Settings]) -> None:
    clients = open_clients(make_settings(**ALL))
    try:
        for name, client in clients.items():
            spec = SOURCE_BY_NAME[name]
            assert {t.name for t in spec.tools_for(client, budget_chars=2000)} == spec.tool_names
            # another source's client gets none of this source's tools
            assert all(not other.tools_for(client, budget_chars=2000) for other in SOURCES if other is not spec)
        names = [t.name for t in source_tools(reversed(list(clients.values())), budget_chars=2000)]
        assert set(names) == SOURCE_TOOL_NAMES
        assert names[0].startswith("prometheus_") and names[-1].startswith("pbs_")  # registry order
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({}, set()),
        (ALL, set(ALL)),
        ({"loki": ALL["loki"], "pbs": ALL["pbs"]}, {"loki", "pbs"}),
        # Grafana without a token gets no client (its URL alone still serves report links and /health)
        ({"grafana": {"url": "http://grafana.test:3000"}, "prometheus": ALL["prometheus"]}, {"prometheus"}),
    ],
    ids=["none", "all", "loki-pbs", "grafana-without-token"],
)
async def test_deps_hold_exactly_the_configured_sources(
    make_settings: Callable[..., Settings], groups: dict[str, dict[str, Any]], expected: set[str]
) -> None:
    deps = build_deps(make_settings(**groups), budget=None, with_runbooks=False)
    try:
        filled = {spec.name for spec in SOURCES if getattr(deps, spec.slot) is not None}
        assert filled == expected
        for spec in SOURCES:
            client = getattr(deps, spec.slot)
            assert client is None or isinstance(client, spec.client_type)
        configured = {name for name, spec in CHECKS.items() if spec.configured(deps)}
        assert ("log_errors" in configured) == ("loki" in expected)
    finally:
        await close_deps(deps)


def test_slot_values_refuse_an_unknown_source_and_a_wrong_client() -> None:
    with pytest.raises(KeyError):
        slot_values({"elasticsearch": object()})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="loki client"):
        slot_values({"loki": object()})  # type: ignore[dict-item]


def test_health_probes_every_registered_source_with_an_address(make_settings: Callable[..., Settings]) -> None:
    probes = source_probes(make_settings(**ALL))
    assert list(probes) == [spec.name for spec in SOURCES]
    for spec in SOURCES:
        assert probes[spec.name] == ALL[spec.name]["url"] + spec.health_path
    # today's rule: an address is probed even when no client is opened for it
    assert list(source_probes(make_settings(grafana={"url": "http://grafana.test:3000"}))) == ["grafana"]
    assert source_probes(make_settings()) == {}


def test_reading_the_registry_does_not_load_langchain() -> None:
    # /health of an intake-only API reads the registry; the tool factories are imported only when tools are made
    code = "import sys, webhook.health; print('langchain_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_two_backends_for_one_slot_are_refused(monkeypatch: pytest.MonkeyPatch, make_settings: Any) -> None:
    import triage.sources as registry

    second = replace(SOURCE_BY_NAME["loki"], name="otherlogs", enable_setting="OTHER_URL")
    monkeypatch.setattr(registry, "SOURCES", (*SOURCES, second))
    monkeypatch.setattr(registry, "SOURCE_BY_NAME", {**SOURCE_BY_NAME, "otherlogs": second})
    with pytest.raises(StartupError, match="LOKI_URL and OTHER_URL"):
        open_clients(make_settings(loki=ALL["loki"]))


# --- a second log backend: any object with the three methods of LogSource serves the log checks ---


class MemoryLogs:
    """A log backend that is not Loki: lines in memory, no patterns API. Implements :class:`LogSource`."""

    def __init__(self, lines: list[tuple[datetime, str]], labels: dict[str, str]) -> None:
        self.lines = lines
        self.stream_labels = labels
        self.calls: list[str] = []

    async def query_range(
        self, logql: str, start: datetime, end: datetime, *, limit: int = 100, direction: Direction = "backward"
    ) -> LogQueryResult:
        self.calls.append("query_range")
        entries = [
            LogEntry(int(at.timestamp() * 1_000_000) * 1000, line, self.stream_labels)
            for at, line in self.lines
            if start <= at <= end
        ]
        entries.sort(key=lambda e: e.ts_ns, reverse=direction == "backward")
        streams = [LogStream(self.stream_labels, entries[:limit])] if entries else []
        return LogQueryResult(logql, "streams", direction, limit, streams=streams, total_series=len(streams))

    async def labels(self, start: datetime, end: datetime, *, limit: int = 1000) -> list[str]:
        self.calls.append("labels")
        return sorted(self.stream_labels)

    async def patterns(self, selector: str, start: datetime, end: datetime, *, step_s: float) -> list[PatternSeries]:
        self.calls.append("patterns")
        raise PatternsUnavailable("no patterns API", source="memory")


async def test_a_log_check_runs_over_a_second_log_backend() -> None:
    world = EngineWorld()
    lines = [(world.ago(minutes), "ERROR disk read timeout on /dev/sdb") for minutes in (2, 3, 4, 6)]
    lines += [(world.ago(minutes), "GET /health 200") for minutes in range(10, 120, 7)]
    logs: LogSource = MemoryLogs(lines, {"host": "web1", "job": "app"})
    assert isinstance(logs, LogSource)
    deps = Deps(analyser=Analyser(LlmSettings(), None), logs=logs)
    assert CHECKS["log_errors"].configured(deps)

    result = await log_errors.run(world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), deps))

    assert isinstance(logs, MemoryLogs) and {"labels", "patterns", "query_range"} <= set(logs.calls)
    found = [e for e in result.evidence if "disk read timeout" in e.title]
    assert found and found[0].data["new"] is True and found[0].data["place"] == "target"


def test_a_follow_up_tool_result_is_attributed_to_the_source_that_makes_the_tool() -> None:
    from triage.analysis.followup import source_of

    for spec in SOURCES:
        for name in spec.tool_names:
            assert source_of(name) == spec.name
    assert source_of("reports_search") == "tool"
    assert source_of("prometheus_but_not_a_tool") == "tool"
