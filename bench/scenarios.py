"""Run the scenario suite and print how well the triage ranks each incident's cause.

Per scenario: the rank of the causal item, top-3 recall of the expected items, whether red herrings stay below the
cause, data-source requests (from the clients' counters) and wall time. Overall: recall, causal-in-top-3 rate,
requests, bytes received and time, and causal-in-top-3 per capability a scenario is tagged with. The LLM is off (deterministic); a real Prometheus (promtool backfill) serves the metrics.

    .venv/bin/python -m bench.scenarios                 # all scenarios
    .venv/bin/python -m bench.scenarios oom_leak dns_cascade -v
    .venv/bin/python -m bench.scenarios --json
    .venv/bin/python -m bench.scenarios --loki-patterns   # the fake Loki serves its patterns API (default: 404)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.scenarios import select
from tests.scenarios.runner import TOP_K, Outcome, Suite
from tests.scenarios.world import SOURCES


def _rank(value: int | None) -> str:
    return "-" if value is None else str(value)


def summarise(outcomes: list[Outcome], startup_s: float) -> dict[str, Any]:
    """The suite's figures as plain data."""
    expected = sum(len(o.ranks) for o in outcomes)
    hits = sum(o.hits for o in outcomes)
    causal_ranks = [o.causal_rank for o in outcomes if o.causal_rank is not None]
    requests = [sum(o.requests.values()) for o in outcomes]
    return {
        "scenarios": len(outcomes),
        "top3_recall": round(hits / expected, 3) if expected else 0.0,
        "causal_in_top3": round(sum(o.causal_in_top for o in outcomes) / len(outcomes), 3) if outcomes else 0.0,
        "causal_found": len(causal_ranks),
        "mean_causal_rank": round(statistics.fmean(causal_ranks), 2) if causal_ranks else None,
        "herrings_below": all(o.herrings_below for o in outcomes if o.scenario.distractors),
        "requests_total": sum(requests),
        "requests_mean": round(statistics.fmean(requests), 1) if requests else 0.0,
        "requests_by_source": {s: sum(o.requests.get(s, 0) for o in outcomes) for s in SOURCES},
        "bytes_mean": round(statistics.fmean(sum(o.bytes_received.values()) for o in outcomes)) if outcomes else 0,
        "bytes_max": max((sum(o.bytes_received.values()) for o in outcomes), default=0),
        "wall_ms_mean": round(statistics.fmean(o.wall_s for o in outcomes) * 1000, 1) if outcomes else 0.0,
        "wall_ms_max": round(max(o.wall_s for o in outcomes) * 1000, 1) if outcomes else 0.0,
        "prometheus_startup_s": round(startup_s, 1),
        "per_capability": {
            tag: {"causal_in_top3": hits, "scenarios": total} for tag, (hits, total) in per_capability(outcomes).items()
        },
        "per_scenario": [
            {
                "name": o.scenario.name,
                "causal_rank": o.causal_rank,
                "expected_ranks": o.ranks,
                "top3_hits": o.hits,
                "expected": len(o.ranks),
                "top3_recall": round(o.recall, 3),
                "distractor_ranks": o.distractor_ranks,
                "requests": o.requests,
                "bytes_received": o.bytes_received,
                "wall_ms": round(o.wall_s * 1000, 1),
                "failed_sources": o.failed_sources,
                "evidence": len(o.report.evidence),
            }
            for o in outcomes
        ],
    }


def per_capability(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """Causal in the top 3, and scenarios, per capability tag (untagged scenarios count as ``original``)."""
    table: dict[str, tuple[int, int]] = {}
    for o in outcomes:
        for tag in o.scenario.tags or ("original",):
            hits, total = table.get(tag, (0, 0))
            table[tag] = (hits + o.causal_in_top, total + 1)
    return dict(sorted(table.items()))


def print_table(outcomes: list[Outcome], summary: dict[str, Any], *, verbose: bool, shown: int = 5) -> None:
    header = f"{'scenario':<20} {'causal':>6} {'top3':>5} {'herring':>8} {'requests':>9} {'wall ms':>8}  per source"
    print(header)
    print("-" * len(header))
    for o in outcomes:
        herring = "-"
        if o.scenario.distractors:
            herring = "no cause" if o.causal_rank is None else ("below" if o.herrings_below else "ABOVE")
        per_source = " ".join(f"{k[:4]}={v}" for k, v in o.requests.items() if v)
        print(
            f"{o.scenario.name:<20} {_rank(o.causal_rank):>6} {o.hits}/{len(o.ranks):<3} {herring:>8} "
            f"{sum(o.requests.values()):>9} {o.wall_s * 1000:>8.0f}  {per_source}"
        )
        if verbose or not o.causal_in_top:
            print(f"    cause: {o.scenario.causal.why}")
            for i, e in enumerate(o.top(shown), 1):
                print(f"    {i}. [{e.source}/{e.kind}] {e.score:.3f} {e.title[:110]}")
    print("-" * len(header))
    print(
        f"top-{TOP_K} recall {summary['top3_recall']:.3f} · causal in top {TOP_K}: "
        f"{summary['causal_in_top3']:.3f} ({sum(o.causal_in_top for o in outcomes)}/{len(outcomes)}) · "
        f"mean causal rank {summary['mean_causal_rank']} · herrings below cause: {summary['herrings_below']}"
    )
    print(
        "causal in top 3 per capability: "
        + ", ".join(f"{tag} {v['causal_in_top3']}/{v['scenarios']}" for tag, v in summary["per_capability"].items())
    )
    print(
        f"requests {summary['requests_total']} (mean {summary['requests_mean']}/alert; "
        + ", ".join(f"{k} {v}" for k, v in summary["requests_by_source"].items())
        + f") · received mean {summary['bytes_mean'] / 1000:.0f} kB, max {summary['bytes_max'] / 1000:.0f} kB"
        + f" · wall mean {summary['wall_ms_mean']} ms, max {summary['wall_ms_max']} ms · "
        f"Prometheus backfill+start {summary['prometheus_startup_s']} s"
    )


async def run(names: list[str], *, loki_patterns: bool = False) -> tuple[list[Outcome], float]:
    scenarios = select(names)
    with tempfile.TemporaryDirectory(prefix="sre-triage-scenarios-") as tmp:
        async with Suite(scenarios, Path(tmp), loki_patterns=loki_patterns) as suite:
            outcomes = [await suite.run(s) for s in scenarios]
            return outcomes, suite.startup_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scenarios", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the top items of every scenario")
    parser.add_argument(
        "--loki-patterns", action="store_true", help="the fake Loki serves its patterns API (default: it answers 404)"
    )
    parser.add_argument("--show", type=int, default=5, metavar="N", help="how many top items to show (default 5)")
    args = parser.parse_args(argv)
    # a failing check logs a warning by design (loki_down); the table reports it
    logging.basicConfig(level=logging.ERROR)
    try:
        outcomes, startup_s = asyncio.run(run(args.names, loki_patterns=args.loki_patterns))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarise(outcomes, startup_s)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(outcomes, summary, verbose=args.verbose, shown=args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
