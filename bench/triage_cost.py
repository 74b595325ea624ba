"""LLM cost per triaged alert over the scenario suite, and for a 50-alert storm.

Every scenario is triaged with the scripted OpenAI-compatible server as the LLM; the server counts prompt and
completion tokens with tiktoken and reports them as ``usage``, which the pipeline records in ``report.llm``. The
storm: node pve-j3 of the ``node_down_storm`` world goes down and 50 alerts arrive at once (TargetDown, guest down
and HTTP probe alerts of its 16 guests, and the node's own), triaged eight at a time as one worker would; the
server's own request count gives the LLM calls.

    .venv/bin/python -m bench.triage_cost
    .venv/bin/python -m bench.triage_cost --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from reports.models import Alert, AlertStatus, labels_fingerprint
from tests.scenarios import select
from tests.scenarios.catalog_outages import DOWN_AT_MIN, STORM_GUESTS
from tests.scenarios.llm_script import ScenarioResponder, TimedAnalyser
from tests.scenarios.runner import Suite, make_deps, run_world
from tests.scenarios.world import World
from tests.support.llm_server import ScriptedLLM
from triage.analysis import Analyser
from triage.pipeline import triage
from triage.settings import LlmSettings, TriageSettings

STORM_SIZE = 50
STORM_CONCURRENCY = 8


@dataclass
class Cost:
    scenario: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    evidence: int
    skipped: str | None


def llm_settings(url: str) -> LlmSettings:
    return LlmSettings(openai_base_url=url, openai_api_key="bench", llm_model="test-model", llm_timeout_s=30.0)


def storm_alerts(world: World) -> list[Alert]:
    """The alerts a node failure sends: per guest TargetDown, guest down and probe failure; the node's own two."""
    started = world.anchor.t0 + (world.anchor.now - world.anchor.t0) / 2
    specs: list[tuple[str, dict[str, str]]] = [
        ("ProxmoxNodeDown", {"node": "pve-j3", "severity": "critical"}),
        ("TargetDown", {"instance": "pve-j3:9100", "job": "node", "severity": "critical"}),
    ]
    for vmid, name, kind in STORM_GUESTS:
        specs.append(("TargetDown", {"instance": f"{name}:9100", "job": "node", "severity": "critical"}))
        specs.append(("ProxmoxGuestNotRunning", {"id": f"{kind}/{vmid}", "node": "pve-j3", "severity": "warning"}))
        specs.append(("HttpProbeFailed", {"instance": f"https://{name}.lab.example", "job": "blackbox"}))
    alerts = []
    for alertname, labels in specs[:STORM_SIZE]:
        full = {"alertname": alertname, **labels}
        alerts.append(
            Alert(
                fingerprint=labels_fingerprint(full),
                alertname=alertname,
                status=AlertStatus.firing,
                labels=full,
                starts_at=started if alertname != "ProxmoxNodeDown" else world.anchor.t0,
                source="alertmanager",
            )
        )
    return alerts


async def run_storm(world: World, analyser: Analyser) -> tuple[int, list[int], float]:
    """Triage the storm's alerts, eight at a time; return the number of alerts, prompt tokens each, wall time."""
    alerts = storm_alerts(world)
    gate = asyncio.Semaphore(STORM_CONCURRENCY)
    settings = TriageSettings()
    loop = asyncio.get_running_loop()

    async def one(alert: Alert) -> int:
        async with gate:
            report = await triage(alert, make_deps(world, analyser), settings, now=world.anchor.now)
            return report.llm.input_tokens if report.llm else 0

    started = loop.time()
    tokens = await asyncio.gather(*(one(a) for a in alerts))
    return len(alerts), list(tokens), loop.time() - started


async def run(llm_delay_s: float) -> dict[str, object]:
    scenarios = select([])
    responder = ScenarioResponder(delay_s=llm_delay_s)
    costs: list[Cost] = []
    with tempfile.TemporaryDirectory(prefix="sre-triage-cost-") as tmp:
        async with Suite(scenarios, Path(tmp)) as suite:
            with ScriptedLLM(responder=responder) as llm:
                analyser = TimedAnalyser(llm_settings(llm.url), None)
                for scenario in scenarios:
                    world = await suite.world(scenario, tag="-cost")
                    try:
                        outcome = await run_world(world, analyser, TriageSettings())
                    finally:
                        await world.aclose()
                    usage = outcome.report.llm
                    assert usage is not None
                    costs.append(
                        Cost(
                            scenario.name,
                            usage.calls,
                            usage.input_tokens,
                            usage.output_tokens,
                            len(outcome.report.evidence),
                            usage.skipped_reason,
                        )
                    )
                suite_calls = llm.calls
                (storm_scenario,) = select(["node_down_storm"])
                world = await suite.world(storm_scenario, tag="-storm")
                try:
                    before = llm.calls
                    storm_n, storm_tokens, storm_s = await run_storm(world, analyser)
                    storm_calls = llm.calls - before
                finally:
                    await world.aclose()
    prompts = [c.prompt_tokens for c in costs]
    return {
        "alerts": len(costs),
        "llm_calls_server": suite_calls,
        "calls_per_alert_max": max(c.calls for c in costs),
        "prompt_tokens_mean": round(statistics.fmean(prompts)),
        "prompt_tokens_max": max(prompts),
        "completion_tokens_mean": round(statistics.fmean(c.completion_tokens for c in costs)),
        "storm_alerts": storm_n,
        "storm_llm_calls": storm_calls,
        "storm_prompt_tokens_total": sum(storm_tokens),
        "storm_wall_s": round(storm_s, 2),
        "storm_grouping": storm_calls < storm_n,
        "down_after_min": DOWN_AT_MIN,
        "per_scenario": [asdict(c) for c in costs],
    }


def print_table(summary: dict[str, object]) -> None:
    rows = summary["per_scenario"]
    assert isinstance(rows, list)
    header = f"{'scenario':<20} {'calls':>5} {'prompt':>7} {'completion':>10} {'evidence':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['scenario']:<20} {row['calls']:>5} {row['prompt_tokens']:>7} {row['completion_tokens']:>10} "
            f"{row['evidence']:>8}" + (f"  skipped: {row['skipped']}" if row["skipped"] else "")
        )
    print("-" * len(header))
    print(
        f"{summary['alerts']} alerts: at most {summary['calls_per_alert_max']} LLM call(s) per alert (goal ≤ 2), "
        f"prompt tokens mean {summary['prompt_tokens_mean']}, max {summary['prompt_tokens_max']} (goal ≤ 6000), "
        f"completion mean {summary['completion_tokens_mean']}; server saw {summary['llm_calls_server']} calls"
    )
    print(
        f"storm of {summary['storm_alerts']} alerts: {summary['storm_llm_calls']} LLM calls (goal ≤ 5), "
        f"{summary['storm_prompt_tokens_total']} prompt tokens, {summary['storm_wall_s']} s; grouped: "
        f"{summary['storm_grouping']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.triage_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-delay", type=float, default=0.0, help="seconds the LLM server takes per answer")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    summary = asyncio.run(run(args.llm_delay))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
