"""Wall time of one triage, side by side with a sequential tool-calling agent over the same tools and LLM server.

Both run against the same scenario worlds with realistic delays — Prometheus 50 ms per query (a delaying transport
in front of a real Prometheus), Loki 300 ms, Proxmox/PBS/Grafana 100 ms per request — and the same scripted
OpenAI-compatible server answering every call in 1.5 s. The pipeline gathers in parallel and asks the LLM once; the
agent (the common design) pays one LLM round trip per tool call and runs the tools one after another: here it calls
every tool of ``tools.langchain_tools.build_tools`` once, then answers.

Printed per scenario: pipeline wall time, its slowest check, its LLM call, the bound (slowest check + one LLM
call), the agent's wall time, tool calls and LLM calls; then medians and the two goal ratios.

    .venv/bin/python -m bench.triage_latency                       # five representative scenarios
    .venv/bin/python -m bench.triage_latency --all --llm-delay 1.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tests.scenarios import select
from tests.scenarios.llm_script import ScenarioResponder, TimedAnalyser, agent_tool_plan
from tests.scenarios.model import Scenario
from tests.scenarios.runner import Suite, make_deps
from tests.scenarios.world import REALISTIC, World
from tests.support.llm_server import ScriptedLLM
from tools.langchain_tools import build_tools
from triage.pipeline.run import triage
from triage.settings import LlmSettings, TriageSettings

DEFAULT_SCENARIOS = ["backup_io", "oom_leak", "bad_deploy_5xx", "node_down_storm", "dns_cascade"]
# a frugal agent that only asks for what a triage usually needs (still one LLM round trip per tool)
FOCUSED_TOOLS = (
    "prometheus_range_summary",
    "loki_query",
    "grafana_annotations",
    "proxmox_guest_status",
    "proxmox_tasks",
    "pbs_tasks",
)
AGENT_MAX_ROUNDS = 40
AGENT_SYSTEM = (
    "You are an SRE triaging an alert. Use the tools to collect evidence, one call at a time, then explain the "
    "most likely cause."
)


@dataclass
class Row:
    scenario: str
    pipeline_s: float
    slowest_check: str
    slowest_check_s: float
    llm_s: float
    llm_calls: int
    agent_s: float
    agent_tool_calls: int
    agent_llm_calls: int

    @property
    def bound_s(self) -> float:
        return self.slowest_check_s + self.llm_s


def llm_settings(url: str) -> LlmSettings:
    return LlmSettings(openai_base_url=url, openai_api_key="bench", llm_model="test-model", llm_timeout_s=30.0)


async def run_pipeline(world: World, analyser: TimedAnalyser) -> tuple[float, str, float, int]:
    world.reset_counters()
    started = time.perf_counter()
    report = await triage(world.alert, make_deps(world, analyser), TriageSettings(), now=world.anchor.now)
    wall_s = time.perf_counter() - started
    name, status = max(report.sources.items(), key=lambda item: item[1].ms)
    calls = report.llm.calls if report.llm else 0
    return wall_s, name, status.ms / 1000, calls


async def run_agent(
    world: World, responder: ScenarioResponder, url: str, *, focused: bool = False
) -> tuple[float, int, int]:
    """The common agent loop: ask the model, run the one tool it asks for, send the result back, repeat."""
    world.reset_counters()
    tools = build_tools(
        prometheus=world.prometheus,
        loki=world.loki,
        grafana=world.grafana,
        proxmox=world.proxmox,
        pbs=world.pbs,
        clock=lambda: world.anchor.now,
    )
    by_name = {tool.name: tool for tool in tools if not focused or tool.name in FOCUSED_TOOLS}
    tools = list(by_name.values())
    datastore = world.scenario.datastores[0].name if world.scenario.datastores else None
    responder.plan = agent_tool_plan(world.alert, world.anchor.now, list(by_name), datastore)
    chat = ChatOpenAI(base_url=url, api_key="bench", model="test-model", max_retries=0, timeout=30.0).bind_tools(tools)
    alert = world.alert
    messages: list[BaseMessage] = [
        SystemMessage(AGENT_SYSTEM),
        HumanMessage(f"Alert {alert.alertname} fired at {alert.starts_at.isoformat()} with labels {alert.labels}."),
    ]
    tool_calls = llm_calls = 0
    started = time.perf_counter()
    for _ in range(AGENT_MAX_ROUNDS):
        reply = await chat.ainvoke(messages)
        llm_calls += 1
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            break
        for call in reply.tool_calls:
            tool = by_name[call["name"]]
            result = await tool.ainvoke(call["args"])
            tool_calls += 1
            messages.append(ToolMessage(content=str(result), tool_call_id=call["id"] or call["name"]))
    return time.perf_counter() - started, tool_calls, llm_calls


async def measure(
    scenario: Scenario, suite: Suite, llm: ScriptedLLM, responder: ScenarioResponder, *, focused: bool
) -> Row:
    analyser = TimedAnalyser(llm_settings(llm.url), None)
    world = await suite.world(scenario, delays=REALISTIC, tag="-latency")
    try:
        pipeline_s, slowest, slowest_s, llm_calls = await run_pipeline(world, analyser)
        agent_s, agent_tools, agent_llm = await run_agent(world, responder, llm.url, focused=focused)
    finally:
        await world.aclose()
    return Row(
        scenario.name, pipeline_s, slowest, slowest_s, analyser.last_s, llm_calls, agent_s, agent_tools, agent_llm
    )


async def run(names: list[str], llm_delay_s: float, *, focused: bool) -> tuple[list[Row], float]:
    scenarios = select(names)
    responder = ScenarioResponder(delay_s=llm_delay_s)
    with tempfile.TemporaryDirectory(prefix="sre-triage-latency-") as tmp:
        async with Suite(scenarios, Path(tmp)) as suite:
            with ScriptedLLM(responder=responder) as llm:
                rows = [await measure(s, suite, llm, responder, focused=focused) for s in scenarios]
            return rows, suite.startup_s


def report(rows: list[Row], llm_delay_s: float) -> dict[str, object]:
    pipeline = statistics.median(r.pipeline_s for r in rows)
    agent = statistics.median(r.agent_s for r in rows)
    bound_ratio = max(r.pipeline_s / r.bound_s for r in rows)
    return {
        "llm_delay_s": llm_delay_s,
        "pipeline_median_s": round(pipeline, 3),
        "agent_median_s": round(agent, 3),
        "speedup_median": round(agent / pipeline, 2),
        "speedup_min": round(min(r.agent_s / r.pipeline_s for r in rows), 2),
        "pipeline_over_bound_max": round(bound_ratio, 3),
        "rows": [asdict(r) | {"bound_s": round(r.bound_s, 3)} for r in rows],
    }


def print_table(rows: list[Row], summary: dict[str, object]) -> None:
    header = (
        f"{'scenario':<18} {'pipeline':>9} {'slowest check':>22} {'llm':>6} {'bound':>6} {'p/bound':>7} "
        f"{'agent':>8} {'tools':>5} {'llm calls':>9} {'speedup':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.scenario:<18} {r.pipeline_s:>8.2f}s {r.slowest_check:>14} {r.slowest_check_s:>6.2f}s "
            f"{r.llm_s:>5.2f}s {r.bound_s:>5.2f}s {r.pipeline_s / r.bound_s:>7.2f} {r.agent_s:>7.2f}s "
            f"{r.agent_tool_calls:>5} {r.agent_llm_calls:>9} {r.agent_s / r.pipeline_s:>6.1f}×"
        )
    print("-" * len(header))
    print(
        f"median pipeline {summary['pipeline_median_s']} s, agent {summary['agent_median_s']} s: "
        f"{summary['speedup_median']}× faster (min {summary['speedup_min']}×; goal ≥ 4×) · "
        f"pipeline / (slowest check + one LLM call) ≤ {summary['pipeline_over_bound_max']} (goal ≤ 1.3)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.triage_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"scenarios (default: {' '.join(DEFAULT_SCENARIOS)})")
    parser.add_argument("--all", action="store_true", help="every scenario of the suite")
    parser.add_argument("--llm-delay", type=float, default=1.5, help="seconds the LLM server takes per answer")
    parser.add_argument(
        "--focused", action="store_true", help=f"the agent calls only {', '.join(FOCUSED_TOOLS)} (not every tool)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    names = [] if args.all else (args.names or DEFAULT_SCENARIOS)
    rows, _ = asyncio.run(run(names, args.llm_delay, focused=args.focused))
    summary = report(rows, args.llm_delay)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
