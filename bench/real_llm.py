"""The scenario suite with a real local model: report quality and time-to-report, beside the deterministic summary.

Installs the llama.cpp server and Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) into a cache folder outside the repository
when absent (:mod:`bench.local_model`), starts the server on a free loopback port, triages every scenario twice —
LLM off (the deterministic summary) and LLM on — against the suite's real Prometheus, then stops both servers.

Per scenario and overall: whether the top hypothesis cites the causal evidence, whether any hypothesis does,
hypotheses dropped for citing unknown ids, how the answer's JSON came (first try / after retry / fell back),
prompt and completion tokens as the server counted them, and the wall time from job start to stored report. For the
deterministic side, "cites" means the summary's strongest evidence (first item / top three) is the cause.

    .venv/bin/python -m bench.real_llm                            # every scenario
    .venv/bin/python -m bench.real_llm --scenarios oom_leak,dns_cascade --max-minutes 10
    .venv/bin/python -m bench.real_llm --json
    .venv/bin/python -m bench.real_llm --reports /tmp/reports     # each LLM report as JSON, with the causal ids
    .venv/bin/python -m bench.real_llm --max-hypotheses 2                         # a shorter answer: time against quality
    .venv/bin/python -m bench.real_llm --scenarios oom_leak --full-evidence   # the prompt without its evidence cuts

The first scenario pays for a cold prompt cache; the instructions are cached for every later one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench.local_model import LocalServer, ServerCounters, default_cache, ensure_installed
from reports.models import Report
from tests.scenarios import select
from tests.scenarios.model import Scenario
from tests.scenarios.runner import Suite, make_deps, offline_analyser
from triage.analysis import triage_prompt as prompt
from triage.analysis.analyser import Analyser
from triage.analysis.fallback import MIN_NOTABLE_SCORE, TOP_EVIDENCE
from triage.analysis.hypothesis_order import explaining_first
from triage.pipeline.run import triage
from triage.settings import LlmSettings, TriageSettings

# a cold 1,500-token prompt takes a minute on two busy cores, and on a machine shared with other model servers an
# answer can take minutes; the timeout only guards against a hung server (a timed-out call is sent again, from scratch)
LLM_TIMEOUT_S = 900.0
# the README's advice for a small local model: an answer of three short hypotheses fits, a rambling one is cut
LOCAL_MAX_OUTPUT_TOKENS = 400
# LLM_MAX_HYPOTHESES as configured by default: over the 54 scenarios two instead of three saved about 3 s per report
# on two cores but the top hypothesis held the cause less often (`--max-hypotheses 2` measures it)
LOCAL_MAX_HYPOTHESES = 3


@dataclass
class Side:
    """One triage of one scenario, scored."""

    top_cites_causal: bool
    any_cites_causal: bool
    hypotheses: int
    dropped: int
    answer_json: str
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    notes: list[str]
    # prompt tokens the server took from its cache; what it processed and generated, and the seconds for each
    cached_tokens: int = 0
    processed_tokens: int = 0
    prompt_s: float = 0.0
    generation_s: float = 0.0
    # the same answer ordered as before the evidence weighed in: by confidence, then explaining first
    top_by_confidence_cites_causal: bool = False


@dataclass
class Row:
    scenario: str
    llm: Side
    deterministic: Side
    top_hypothesis: str


def _causal_ids(scenario: Scenario, report: Report) -> set[str]:
    return {e.id for e in report.evidence if scenario.causal.matches(e)}


def score_llm(scenario: Scenario, report: Report, wall_s: float, spent: ServerCounters | None = None) -> Side:
    """The LLM side: do the hypotheses cite evidence the scenario calls causal? ``spent``: the server's share."""
    causal = _causal_ids(scenario, report)
    cites = [bool(causal & set(h.evidence)) for h in report.hypotheses]
    by_confidence, _ = explaining_first(
        sorted(report.hypotheses, key=lambda h: -h.confidence), {e.id: e for e in report.evidence}
    )
    usage = report.llm
    spent = spent or ServerCounters()
    return Side(
        top_cites_causal=bool(cites) and cites[0],
        any_cites_causal=any(cites),
        hypotheses=len(report.hypotheses),
        dropped=usage.dropped_hypotheses if usage else 0,
        answer_json=(usage.answer_json if usage else None) or "none",
        prompt_tokens=usage.input_tokens if usage else 0,
        completion_tokens=usage.output_tokens if usage else 0,
        wall_s=wall_s,
        notes=list(usage.notes) if usage else [],
        cached_tokens=usage.cached_input_tokens if usage else 0,
        processed_tokens=round(spent.prompt_tokens),
        prompt_s=round(spent.prompt_s, 1),
        generation_s=round(spent.generation_s, 1),
        top_by_confidence_cites_causal=bool(by_confidence) and bool(causal & set(by_confidence[0].evidence)),
    )


def score_deterministic(scenario: Scenario, report: Report, wall_s: float) -> Side:
    """The summary side: the summary names the strongest items, so the cause must be among them."""
    named = [e for e in report.evidence if e.score >= MIN_NOTABLE_SCORE][:TOP_EVIDENCE]
    hits = [scenario.causal.matches(e) for e in named]
    return Side(
        top_cites_causal=bool(hits) and hits[0],
        any_cites_causal=any(hits),
        hypotheses=0,
        dropped=0,
        answer_json="-",
        prompt_tokens=0,
        completion_tokens=0,
        wall_s=wall_s,
        notes=[],
    )


async def _triage_once(suite: Suite, scenario: Scenario, analyser: Analyser) -> tuple[Report, float]:
    """Triage the scenario's alert and store the report, as the job does; the wall time covers both."""
    world = await suite.world(scenario)
    try:
        started = time.perf_counter()
        report = await triage(world.alert, make_deps(world, analyser), TriageSettings(), now=world.anchor.now)
        await world.store.save(report)
        return report, time.perf_counter() - started
    finally:
        await world.aclose()


def llm_analyser(base_url: str, model: str, max_hypotheses: int = LOCAL_MAX_HYPOTHESES) -> Analyser:
    """The analyser a homelab user would configure for this server (no follow-up tools: the model has none)."""
    settings = LlmSettings(
        openai_base_url=base_url,
        openai_api_key=None,
        llm_model=model,
        llm_timeout_s=LLM_TIMEOUT_S,
        llm_max_output_tokens=LOCAL_MAX_OUTPUT_TOKENS,
        llm_max_hypotheses=max_hypotheses,
    )
    return Analyser(settings, None)


def save_report(folder: Path, scenario: Scenario, report: Report) -> None:
    """``report`` as ``<scenario>.json`` in ``folder``, beside the ids the scenario calls causal, to study offline."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "scenario": scenario.name,
        "causal_ids": sorted(_causal_ids(scenario, report)),
        "report": report.model_dump(mode="json"),
    }
    (folder / f"{scenario.name}.json").write_text(json.dumps(data, indent=1))


async def run(
    scenarios: Sequence[Scenario],
    server: LocalServer,
    max_minutes: float,
    max_hypotheses: int = LOCAL_MAX_HYPOTHESES,
    reports: Path | None = None,
) -> tuple[list[Row], list[str]]:
    """Both triages of each scenario; scenarios not started within ``max_minutes`` are returned as skipped.
    ``reports``: a folder to save each LLM report in (:func:`save_report`)."""
    rows: list[Row] = []
    skipped: list[str] = []
    deadline = time.monotonic() + max_minutes * 60
    analyser = llm_analyser(server.base_url, server.model_name, max_hypotheses)
    with tempfile.TemporaryDirectory(prefix="sre-triage-real-llm-") as tmp:
        async with Suite(scenarios, Path(tmp)) as suite:
            for scenario in scenarios:
                if time.monotonic() >= deadline:
                    skipped.append(scenario.name)
                    continue
                plain, plain_s = await _triage_once(suite, scenario, offline_analyser())
                before = server.counters()
                report, wall_s = await _triage_once(suite, scenario, analyser)
                spent = server.counters() - before
                if reports is not None:
                    save_report(reports, scenario, report)
                row = Row(
                    scenario=scenario.name,
                    llm=score_llm(scenario, report, wall_s, spent),
                    deterministic=score_deterministic(scenario, plain, plain_s),
                    top_hypothesis=report.hypotheses[0].title if report.hypotheses else "",
                )
                rows.append(row)
                _setup(
                    f"{scenario.name}: report in {wall_s:.1f} s, top hypothesis cites the cause: {_yn(row.llm.top_cites_causal)}"
                )
    return rows, skipped


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def summarise(rows: list[Row], skipped: list[str], load_s: float, load_average: tuple[float, float]) -> dict[str, Any]:
    """The overall figures as plain data; ``load_average``: the machine's 1-minute load at start and end."""
    llm = [r.llm for r in rows]
    det = [r.deterministic for r in rows]
    json_counts = {k: sum(1 for s in llm if s.answer_json == k) for k in ("first_try", "after_retry", "fell_back")}
    return {
        "scenarios": len(rows),
        "skipped": skipped,
        "model_load_s": round(load_s, 1),
        "load_average": [round(v, 2) for v in load_average],
        "llm": {
            "top_cites_causal": _rate([s.top_cites_causal for s in llm]),
            "top_by_confidence_cites_causal": _rate([s.top_by_confidence_cites_causal for s in llm]),
            "any_cites_causal": _rate([s.any_cites_causal for s in llm]),
            "dropped_hypotheses": sum(s.dropped for s in llm),
            "answer_json": json_counts,
            "median_prompt_tokens": _median([float(s.prompt_tokens) for s in llm]),
            "median_completion_tokens": _median([float(s.completion_tokens) for s in llm]),
            "median_cached_tokens": _median([float(s.cached_tokens) for s in llm]),
            "median_processed_tokens": _median([float(s.processed_tokens) for s in llm]),
            "median_prompt_s": _median([s.prompt_s for s in llm]),
            "median_generation_s": _median([s.generation_s for s in llm]),
            "median_wall_s": _median([s.wall_s for s in llm]),
            "max_wall_s": round(max(s.wall_s for s in llm), 1) if llm else None,
        },
        "deterministic": {
            "top_cites_causal": _rate([s.top_cites_causal for s in det]),
            "any_cites_causal": _rate([s.any_cites_causal for s in det]),
            "median_wall_s": _median([s.wall_s for s in det]),
        },
        "per_scenario": [asdict(r) for r in rows],
    }


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def print_table(rows: list[Row], summary: dict[str, Any]) -> None:
    header = (
        f"{'scenario':<20} {'top':>4} {'any':>4} {'drop':>4} {'json':>11} {'prompt':>6} {'cached':>6} {'proc':>5} {'compl':>5}"
        f" {'pp s':>5} {'gen s':>5} {'wall s':>6}"
        f" | {'det top':>7} {'det any':>7} {'det s':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        m, d = r.llm, r.deterministic
        print(
            f"{r.scenario:<20} {_yn(m.top_cites_causal):>4} {_yn(m.any_cites_causal):>4} {m.dropped:>4} "
            f"{m.answer_json:>11} {m.prompt_tokens:>6} {m.cached_tokens:>6} {m.processed_tokens:>5} {m.completion_tokens:>5} "
            f"{m.prompt_s:>5.1f} {m.generation_s:>5.1f} {m.wall_s:>6.1f}"
            f" | {_yn(d.top_cites_causal):>7} {_yn(d.any_cites_causal):>7} {d.wall_s:>5.1f}"
        )
        for note in m.notes:
            print(f"    note: {note}")
    print("-" * len(header))
    llm, det = summary["llm"], summary["deterministic"]
    print(
        f"LLM: top hypothesis cites the cause {llm['top_cites_causal']} (ordered by confidence alone "
        f"{llm['top_by_confidence_cites_causal']}) · any hypothesis {llm['any_cites_causal']} · "
        f"dropped {llm['dropped_hypotheses']} · JSON {llm['answer_json']} · median prompt "
        f"{llm['median_prompt_tokens']} (cached {llm['median_cached_tokens']}, processed "
        f"{llm['median_processed_tokens']}) / completion "
        f"{llm['median_completion_tokens']} tokens · median prompt processing {llm['median_prompt_s']} s, "
        f"generation {llm['median_generation_s']} s · median time to report {llm['median_wall_s']} s "
        f"(max {llm['max_wall_s']} s)"
    )
    print(f"load average (1 min) at start / end: {summary['load_average'][0]} / {summary['load_average'][1]}")
    print(
        f"deterministic: top item is the cause {det['top_cites_causal']} · cause in the summary "
        f"{det['any_cites_causal']} · median time to report {det['median_wall_s']} s"
    )
    if summary["skipped"]:
        print(f"not run (--max-minutes): {', '.join(summary['skipped'])}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _setup(message: str) -> None:
    # progress goes to stderr, so --json output stays parseable
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.real_llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="start no scenario after this many minutes")
    parser.add_argument("--cache", type=Path, default=None, help="server and model folder (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the llama.cpp server")
    parser.add_argument(
        "--max-hypotheses",
        type=int,
        default=LOCAL_MAX_HYPOTHESES,
        choices=range(1, 6),
        metavar="N",
        help="LLM_MAX_HYPOTHESES of the triage (default: %(default)s, as configured by default)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--reports", type=Path, default=None, help="save each LLM report as JSON in this folder")
    parser.add_argument(
        "--full-evidence",
        action="store_true",
        help="show the model every selected evidence item with its whole detail (no noise floor, no clipping), "
        "to measure what the prompt's cuts change",
    )
    args = parser.parse_args(argv)
    if args.full_evidence:
        # the prompt module reads these at every call; the bench process is the only user
        prompt.PROMPT_MIN_SCORE = 0.0
        prompt.PROMPT_DETAIL_CHARS = 1_000_000
    logging.basicConfig(level=logging.ERROR)
    # SIGTERM (timeout, CI) unwinds like Ctrl-C, so the servers are stopped on the way out
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        scenarios = select([n.strip() for n in args.scenarios.split(",") if n.strip()])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cache = args.cache or default_cache()
    installed = ensure_installed(cache, progress=_setup)
    _setup(f"starting the llama.cpp server ({args.threads} threads)")
    try:
        with LocalServer(installed, threads=args.threads) as server:
            _setup(f"model loaded in {server.load_s:.1f} s at {server.base_url}")
            load_start = os.getloadavg()[0]
            rows, skipped = asyncio.run(run(scenarios, server, args.max_minutes, args.max_hypotheses, args.reports))
            load_s = server.load_s
    except KeyboardInterrupt:
        _setup("interrupted; servers stopped")
        return 130
    _setup("server stopped")
    summary = summarise(rows, skipped, load_s, (load_start, os.getloadavg()[0]))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
