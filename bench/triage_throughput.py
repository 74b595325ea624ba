"""Triages per minute of one worker process running ``max_jobs`` triages at once, with realistic source delays.

The alerts are the scenario suite's, round-robin, each with its own fingerprint; the sources answer with the delays
of the latency benchmark (Prometheus 50 ms, Loki 300 ms, Proxmox/PBS/Grafana 100 ms per request) and the scripted
LLM server in ``--llm-delay`` seconds (1.5 by default).

``--mode worker`` (default): the alerts are enqueued as the webhook enqueues them on a throwaway redis-server, and
the real arq worker (``triage.worker.arq_settings.build_worker``, ``burst=True``) runs them — record, triage, store, deliver the
annotation — with every scenario in one homelab of fakes (:mod:`tests.scenarios.homelab`). ``--mode pipeline``:
concurrent ``triage.pipeline.run.triage`` calls bounded by ``max_jobs``, one scenario world each, no queue or store.

    .venv/bin/python -m bench.triage_throughput --alerts 96 --max-jobs 8
    .venv/bin/python -m bench.triage_throughput --mode pipeline
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
from pathlib import Path

from reports.models import Alert
from tests.scenarios import select
from tests.scenarios.homelab import Homelab, build_homelab
from tests.scenarios.llm_script import ScenarioResponder
from tests.scenarios.runner import Suite, make_deps
from tests.scenarios.worker_run import drain, enqueue
from tests.scenarios.world import REALISTIC, World
from tests.support.llm_server import ScriptedLLM
from tests.support.procs import RedisServer
from triage.analysis.analyser import Analyser
from triage.pipeline.run import triage
from triage.settings import LlmSettings, RedisSettings, TriageSettings, load_settings


def llm_settings(url: str) -> LlmSettings:
    return LlmSettings(openai_base_url=url, openai_api_key="bench", llm_model="test-model", llm_timeout_s=60.0)


async def run_pipeline(alert_count: int, max_jobs: int, llm_delay_s: float) -> dict[str, object]:
    scenarios = select([])
    responder = ScenarioResponder(delay_s=llm_delay_s)
    with tempfile.TemporaryDirectory(prefix="sre-triage-throughput-") as tmp:
        async with Suite(scenarios, Path(tmp)) as suite:
            worlds: list[World] = [await suite.world(s, delays=REALISTIC, tag="-tp") for s in scenarios]
            try:
                with ScriptedLLM(responder=responder) as llm:
                    analyser = Analyser(llm_settings(llm.url), None)
                    jobs: list[tuple[World, Alert]] = []
                    for i in range(alert_count):
                        world = worlds[i % len(worlds)]
                        fingerprint = f"{world.alert.fingerprint}-{i}"
                        jobs.append((world, world.alert.model_copy(update={"fingerprint": fingerprint})))
                    gate = asyncio.Semaphore(max_jobs)
                    settings = TriageSettings()
                    durations: list[float] = []

                    async def one(world: World, alert: Alert) -> int:
                        async with gate:
                            started = time.perf_counter()
                            report = await triage(alert, make_deps(world, analyser), settings, now=world.anchor.now)
                            durations.append(time.perf_counter() - started)
                            return report.llm.calls if report.llm else 0

                    started = time.perf_counter()
                    calls = await asyncio.gather(*(one(w, a) for w, a in jobs))
                    wall_s = time.perf_counter() - started
                    server_calls = llm.calls
            finally:
                for world in worlds:
                    await world.aclose()
    return {
        "mode": "concurrent pipeline.triage calls in one process (bounded like WORKER_MAX_JOBS)",
        "alerts": alert_count,
        "max_jobs": max_jobs,
        "llm_delay_s": llm_delay_s,
        "wall_s": round(wall_s, 2),
        "triages_per_min": round(alert_count / wall_s * 60, 1),
        "triage_s_median": round(statistics.median(durations), 2),
        "triage_s_p95": round(sorted(durations)[int(0.95 * (len(durations) - 1))], 2),
        "llm_calls": sum(calls),
        "llm_calls_server": server_calls,
    }


async def run_worker(alert_count: int, max_jobs: int, llm_delay_s: float) -> dict[str, object]:
    scenarios = select([])
    responder = ScenarioResponder(delay_s=llm_delay_s)
    with tempfile.TemporaryDirectory(prefix="sre-triage-throughput-") as tmp:
        workdir = Path(tmp)
        redis_server = RedisServer(workdir)
        redis_server.start()
        try:
            async with Suite(scenarios, workdir) as suite:
                homelab = await build_homelab(
                    scenarios,
                    suite.anchors,
                    prometheus_url=suite.prometheus.url,
                    workdir=workdir / "homelab",
                    delays=REALISTIC,
                )
                try:
                    with ScriptedLLM(responder=responder) as llm:
                        return await _drain(homelab, redis_server.url, llm, alert_count, max_jobs, llm_delay_s)
                finally:
                    await homelab.aclose()
        finally:
            redis_server.stop()


async def _drain(
    homelab: Homelab, redis_url: str, llm: ScriptedLLM, alert_count: int, max_jobs: int, llm_delay_s: float
) -> dict[str, object]:
    settings = load_settings(
        redis={"redis_url": redis_url, "worker_max_jobs": max_jobs},
        llm={"openai_base_url": llm.url, "openai_api_key": "bench", "llm_model": "test-model"},
        storage={"database_url": "sqlite:///unused.db"},
        # every alert here is its own incident; storm grouping is measured by bench.triage_cost
        triage={"storm_window_s": 0},
    )
    alerts = []
    for i in range(alert_count):
        base = homelab.alerts[i % len(homelab.alerts)]
        alerts.append(base.model_copy(update={"fingerprint": f"{base.fingerprint}-{i}"}))
    await enqueue(redis_url, alerts)
    run = await drain(settings, homelab.store, homelab.deps)
    reports = await homelab.store.list(limit=alert_count + 100)
    # count reports, not jobs: the worker also runs its start-up cron job (report retention)
    triaged = sum(1 for r in reports if r.sources)
    return {
        "mode": "arq worker (burst) on a throwaway redis-server: record, triage, store, deliver",
        "alerts": alert_count,
        "max_jobs": max_jobs,
        "llm_delay_s": llm_delay_s,
        "wall_s": round(run.wall_s, 2),
        "triages_per_min": round(triaged / run.wall_s * 60, 1),
        "jobs_complete": run.complete,
        "jobs_failed": run.failed,
        "jobs_retried": run.retried,
        "reports_triaged": triaged,
        "annotations": len(homelab.grafana_fake.annotations),
        "llm_calls_server": llm.calls,
        "requests": homelab.requests(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.triage_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=96, help="alerts to triage")
    parser.add_argument(
        "--max-jobs", type=int, default=RedisSettings().worker_max_jobs, help="triages at once (WORKER_MAX_JOBS)"
    )
    parser.add_argument("--llm-delay", type=float, default=1.5, help="seconds the LLM server takes per answer")
    parser.add_argument("--mode", choices=("worker", "pipeline"), default="worker", help="see the module help")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    run = run_worker if args.mode == "worker" else run_pipeline
    summary = asyncio.run(run(args.alerts, args.max_jobs, args.llm_delay))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['alerts']} alerts, max_jobs {summary['max_jobs']}, LLM {summary['llm_delay_s']} s: "
            f"{summary['triages_per_min']} triages/min (wall {summary['wall_s']} s)\n"
            + "\n".join(f"  {k}: {v}" for k, v in summary.items() if k not in ("alerts", "max_jobs", "llm_delay_s"))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
