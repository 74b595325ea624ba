"""Run scenarios through the triage pipeline and score the ranking against each scenario's expectations.

:class:`Suite` starts the one shared Prometheus (all scenarios backfilled at once) and builds worlds on demand;
:func:`evaluate` turns a report into an :class:`Outcome`: the rank of every expected item, top-3 hits, requests
per data source, wall time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from reports.models import Evidence, Report
from tests.scenarios.model import Scenario
from tests.scenarios.world import Anchor, Delays, World, anchors, build_world, suite_series
from tests.support.prometheus import PrometheusWorld
from tools.loki_patterns import Availability
from triage.analysis.analyser import Analyser
from triage.deps import Deps
from triage.pipeline.run import triage
from triage.settings import LlmSettings, TriageSettings
from triage.topology import Topology

TOP_K = 3
NO_DELAYS = Delays()


@dataclass
class Outcome:
    """How one triage of one scenario went."""

    scenario: Scenario
    report: Report
    wall_s: float
    requests: dict[str, int]
    bytes_received: dict[str, int] = field(default_factory=dict)
    ranks: list[int | None] = field(default_factory=list)
    distractor_ranks: list[int | None] = field(default_factory=list)

    @property
    def causal_rank(self) -> int | None:
        return self.ranks[0] if self.ranks else None

    @property
    def causal_in_top(self) -> bool:
        return self.causal_rank is not None and self.causal_rank <= TOP_K

    @property
    def hits(self) -> int:
        """Expected items (causal and supporting) ranked in the top 3."""
        return sum(1 for r in self.ranks if r is not None and r <= TOP_K)

    @property
    def recall(self) -> float:
        return self.hits / len(self.ranks) if self.ranks else 0.0

    @property
    def herrings_below(self) -> bool:
        """Every red herring ranks below the causal item (or is not reported at all)."""
        causal = self.causal_rank
        if causal is None:
            return False
        return all(r is None or r > causal for r in self.distractor_ranks)

    @property
    def failed_sources(self) -> list[str]:
        return sorted(name for name, status in self.report.sources.items() if not status.ok)

    @property
    def history_ok(self) -> bool | None:
        wanted = self.scenario.expect_history
        return None if wanted is None else self.report.history.frequency == wanted

    def top(self, k: int = 5) -> list[Evidence]:
        return self.report.evidence[:k]


def evaluate(scenario: Scenario, report: Report, wall_s: float, requests: dict[str, int]) -> Outcome:
    """Score ``report`` against what the scenario says a good triage ranks high."""
    ranked = report.evidence
    return Outcome(
        scenario=scenario,
        report=report,
        wall_s=wall_s,
        requests=requests,
        ranks=[e.rank_in(ranked) for e in scenario.expected],
        distractor_ranks=[d.rank_in(ranked) for d in scenario.distractors],
    )


def offline_analyser() -> Analyser:
    """An analyser with no LLM: the deterministic summary, so a run is reproducible."""
    return Analyser(LlmSettings(openai_base_url=None, openai_api_key=None), None)


def make_deps(world: World, analyser: Analyser) -> Deps:
    return Deps(
        analyser=analyser,
        prometheus=world.prometheus,
        logs=world.loki,
        grafana=world.grafana,
        proxmox=world.proxmox,
        pbs=world.pbs,
        store=world.store,
        topology=load_topology(world.topology_path),
    )


def load_topology(path: Path | None) -> Topology | None:
    """The world's topology file (``TOPOLOGY_FILE``) as the service loads it at start-up; None without one."""
    return Topology.load(path) if path is not None else None


async def run_world(world: World, analyser: Analyser, settings: TriageSettings) -> Outcome:
    """Triage the world's alert once and score it."""
    world.reset_counters()
    started = time.perf_counter()
    report = await triage(world.alert, make_deps(world, analyser), settings, now=world.anchor.now)
    wall_s = time.perf_counter() - started
    outcome = evaluate(world.scenario, report, wall_s, world.requests())
    outcome.bytes_received = world.bytes_received()
    return outcome


class Suite:
    """The shared Prometheus for a set of scenarios, and a factory of their worlds. An async context manager."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        workdir: Path,
        *,
        now: datetime | None = None,
        loki_patterns: bool = False,
    ) -> None:
        self.scenarios = list(scenarios)
        # whether the fake Loki serves the patterns API (else it answers 404, as without the pattern ingester)
        self.loki_patterns = loki_patterns
        # one process's memory of whether Loki serves patterns, shared by the scenarios as by a worker's jobs
        self.loki_availability = Availability()
        self.workdir = workdir
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.anchors: dict[str, Anchor] = anchors(self.scenarios, self.now)
        self.prometheus = PrometheusWorld(workdir / "prometheus", suite_series(self.scenarios, self.anchors))
        self.startup_s = 0.0

    def start(self) -> None:
        """Backfill and start the shared Prometheus (blocking; seconds on two cores)."""
        started = time.perf_counter()
        self.prometheus.start()
        self.startup_s = time.perf_counter() - started

    def stop(self) -> None:
        self.prometheus.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    async def world(self, scenario: Scenario, *, delays: Delays = NO_DELAYS, tag: str = "") -> World:
        return await build_world(
            scenario,
            self.anchors[scenario.name],
            prometheus_url=self.prometheus.url,
            workdir=self.workdir / "worlds" / f"{scenario.name}{tag}",
            delays=delays,
            loki_patterns=self.loki_patterns,
            loki_availability=self.loki_availability,
        )

    async def run(
        self,
        scenario: Scenario,
        *,
        analyser: Analyser | None = None,
        settings: TriageSettings | None = None,
        delays: Delays = NO_DELAYS,
    ) -> Outcome:
        """Build the scenario's world, triage it, score it, close the world."""
        world = await self.world(scenario, delays=delays)
        try:
            return await run_world(world, analyser or offline_analyser(), settings or TriageSettings())
        finally:
            await world.aclose()
