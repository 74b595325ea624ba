"""LLM cost per triaged alert over the scenario suite, and for a 50-alert storm.

Every scenario is triaged with the scripted OpenAI-compatible server as the LLM; the server counts prompt and
completion tokens with tiktoken and reports them as ``usage``, which the pipeline records in ``report.llm``. The
storm: node pve-j3 of the ``node_down_storm`` world goes down and 50 alerts arrive at once (TargetDown, guest down
and HTTP probe alerts of its 16 guests, and the node's own); they are enqueued as the webhook enqueues them and the
real arq worker (eight jobs at once, a throwaway redis-server) triages them, storm grouping included. The server's
own request count gives the LLM calls. Run twice: with the group keys Alertmanager sends under
``group_by: [alertname]``, and without any group key.

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

from redis.asyncio import Redis

from tests.scenarios import select
from tests.scenarios.catalog_outages import DOWN_AT_MIN
from tests.scenarios.llm_script import ScenarioResponder, TimedAnalyser
from tests.scenarios.runner import Suite, make_deps, run_world
from tests.scenarios.storm import storm_alerts
from tests.scenarios.worker_run import drain, enqueue
from tests.support.llm_server import ScriptedLLM
from tests.support.procs import RedisServer
from triage.settings import LlmSettings, TriageSettings, load_settings

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


async def run_storm(suite: Suite, llm: ScriptedLLM, redis_url: str, *, group_keys: bool) -> dict[str, object]:
    """50 alerts of one node failure through the real worker (eight jobs at once), storm grouping as configured."""
    (scenario,) = select(["node_down_storm"])
    world = await suite.world(scenario, tag=f"-storm-{group_keys}")
    client: Redis = Redis.from_url(redis_url)
    try:
        await client.flushdb()
        settings = load_settings(
            redis={"redis_url": redis_url, "worker_max_jobs": STORM_CONCURRENCY},
            llm={"openai_base_url": llm.url, "openai_api_key": "bench", "llm_model": "test-model"},
            storage={"database_url": "sqlite:///unused.db"},
        )
        alerts = storm_alerts(world.anchor, group_keys=group_keys)
        before = llm.calls
        await enqueue(redis_url, alerts)
        run = await drain(settings, world.store, lambda analyser: make_deps(world, analyser))
        reports = await world.store.list(limit=200)
        storm_reports = [r for r in reports if r.id in {a.occurrence_key for a in alerts}]
        return {
            "alerts": len(alerts),
            "group_keys": group_keys,
            "llm_calls": llm.calls - before,
            "groups": len({r.group_id for r in storm_reports if r.group_id}),
            "members_linked": sum(1 for r in storm_reports if r.group_id and r.group_id != r.id),
            "prompt_tokens": sum(r.llm.input_tokens for r in storm_reports if r.llm),
            "reports": sum(1 for r in storm_reports if r.sources),
            "jobs_failed": run.failed,
            "wall_s": round(run.wall_s, 2),
        }
    finally:
        await client.aclose()
        await world.aclose()


async def run(llm_delay_s: float) -> dict[str, object]:
    scenarios = select([])
    responder = ScenarioResponder(delay_s=llm_delay_s)
    costs: list[Cost] = []
    with tempfile.TemporaryDirectory(prefix="sre-triage-cost-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        try:
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
                    storms = [
                        await run_storm(suite, llm, redis_server.url, group_keys=True),
                        await run_storm(suite, llm, redis_server.url, group_keys=False),
                    ]
        finally:
            redis_server.stop()
    prompts = [c.prompt_tokens for c in costs]
    return {
        "alerts": len(costs),
        "llm_calls_server": suite_calls,
        "calls_per_alert_max": max(c.calls for c in costs),
        "prompt_tokens_mean": round(statistics.fmean(prompts)),
        "prompt_tokens_max": max(prompts),
        "completion_tokens_mean": round(statistics.fmean(c.completion_tokens for c in costs)),
        "storms": storms,
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
    storms = summary["storms"]
    assert isinstance(storms, list)
    for storm in storms:
        keys = "with Alertmanager group keys" if storm["group_keys"] else "without group keys"
        print(
            f"storm of {storm['alerts']} alerts {keys}: {storm['llm_calls']} LLM calls (goal ≤ 5), "
            f"{storm['groups']} group report(s), {storm['members_linked']} members linked, "
            f"{storm['prompt_tokens']} prompt tokens, {storm['reports']} reports "
            f"({storm['jobs_failed']} failed) in {storm['wall_s']} s"
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
