"""Retrieval quality of the runbook index: recall@1, recall@3 and MRR for vector only, BM25 only and hybrid.

Ingests ``runbooks/`` into a temporary index with the local model and runs every query of
``tests/eval/retrieval_queries.yaml``. A hit is a result whose file and section both match an expected entry.

Recall@3 is also given for two fixed halves of the queries (even and odd positions in the file): ranking
parameters are chosen on one half and confirmed on the other, so a change that only fits the answers of the
queries it was tried on shows up as a gap between the halves.

    .venv/bin/python bench/retrieval_eval.py [--queries FILE] [--runbooks DIR] [--misses] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.runbooks.collection import make_client  # noqa: E402
from tools.runbooks.embeddings import OnnxMiniLmEmbedding  # noqa: E402
from tools.runbooks.index import Mode, RunbookHit, RunbookIndex  # noqa: E402
from tools.runbooks.ingest import ingest_blocking  # noqa: E402

MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid")
DEPTH = 10


def load_queries(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise SystemExit(f"{path}: expected a list of {{query, expect}} entries")
    return data


def is_hit(hit: RunbookHit, expect: list[dict[str, str]]) -> bool:
    name = hit.source.rsplit("/", 1)[-1]
    return any(name == e["file"].rsplit("/", 1)[-1] and hit.section.strip() == e["section"].strip() for e in expect)


def first_rank(hits: list[RunbookHit], expect: list[dict[str, str]]) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if is_hit(h, expect)), None)


async def evaluate(index: RunbookIndex, queries: list[dict[str, Any]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for mode in MODES:
        ranks: list[int | None] = []
        misses: list[dict[str, Any]] = []
        for item in queries:
            result = await index.search(item["query"], limit=DEPTH, mode=mode)
            rank = first_rank(result.hits, item["expect"])
            ranks.append(rank)
            if rank is None or rank > 3:
                top = [f"{h.source.rsplit('/', 1)[-1]} § {h.section}" for h in result.hits[:3]]
                misses.append({"query": item["query"], "rank": rank, "expect": item["expect"], "top3": top})
        n = len(ranks)
        even, odd = ranks[0::2], ranks[1::2]
        report[mode] = {
            "recall@1": sum(1 for r in ranks if r == 1) / n,
            "recall@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
            "recall@3_even": sum(1 for r in even if r is not None and r <= 3) / max(1, len(even)),
            "recall@3_odd": sum(1 for r in odd if r is not None and r <= 3) / max(1, len(odd)),
            "mrr": sum(1.0 / r for r in ranks if r is not None) / n,
            "misses": misses,
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=Path, default=ROOT / "tests/eval/retrieval_queries.yaml")
    parser.add_argument("--runbooks", type=Path, default=ROOT / "runbooks")
    parser.add_argument("--misses", action="store_true", help="list the queries not answered in the top 3")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    queries = load_queries(args.queries)
    with tempfile.TemporaryDirectory(prefix="sre-triage-eval-") as tmp:
        embedder = OnnxMiniLmEmbedding()
        client = make_client(Path(tmp))
        summary = ingest_blocking(client, embedder, [args.runbooks], progress=False)
        print(summary.line(), file=sys.stderr)
        index = RunbookIndex(embedder, client=client)
        started = time.perf_counter()
        report = asyncio.run(evaluate(index, queries))
        elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{len(queries)} queries, {summary.chunks_total} chunks, {elapsed:.1f} s")
    print(f"{'retriever':<10} {'recall@1':>9} {'recall@3':>9} {'MRR':>7} {'r@3 even':>9} {'r@3 odd':>8}")
    for mode in MODES:
        r = report[mode]
        label = "bm25" if mode == "keyword" else mode
        print(f"{label:<10} {r['recall@1']:>9.3f} {r['recall@3']:>9.3f} {r['mrr']:>7.3f} "
              f"{r['recall@3_even']:>9.3f} {r['recall@3_odd']:>8.3f}")  # fmt: skip
    if args.misses:
        for miss in report["hybrid"]["misses"]:
            want = "; ".join(f"{e['file']} § {e['section']}" for e in miss["expect"])
            print(f"\nMISS (rank {miss['rank']}): {miss['query'][:160]}\n  want: {want}\n  got:  {miss['top3']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
