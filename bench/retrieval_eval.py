"""Retrieval quality of the runbook index: recall@1, recall@3 and MRR for vector only, BM25 only and hybrid.

Ingests ``runbooks/`` into a temporary index with the local model and runs every query of
``tests/eval/retrieval_queries.yaml``. A hit is a result whose file and section both match an expected entry.

Recall@3 is also given for two fixed halves of the queries (even and odd positions in the file): ranking
parameters are chosen on one half and confirmed on the other, so a change that only fits the answers of the
queries it was tried on shows up as a gap between the halves.

The second document set, ``tests/eval/homelab/``, is one site's own notes (host names, service names, its own
conventions) indexed next to the bundled runbooks, as ``EXTRA_DOCS_DIRS`` would. Its queries
(``tests/eval/homelab_queries.yaml``) ask about that site and name the site document that should answer them;
recall@3 there is by document (any of the first three results comes from it), per document and overall, with the
results diversified by document (the default) and in plain rank order. Queries marked ``none`` have no answer in
either set: the search should say so instead of listing sections.

    .venv/bin/python bench/retrieval_eval.py [--queries FILE] [--runbooks DIR] [--misses] [--json] [--no-homelab]
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
from tools.runbooks.index import MAX_PER_DOCUMENT, MIN_SIMILARITY, Mode, RunbookHit, RunbookIndex  # noqa: E402
from tools.runbooks.ingest import ingest_blocking  # noqa: E402

MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid")
DEPTH = 10
HOMELAB_DOCS = ROOT / "tests/eval/homelab"
HOMELAB_QUERIES = ROOT / "tests/eval/homelab_queries.yaml"


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


async def evaluate(
    index: RunbookIndex, queries: list[dict[str, Any]], modes: tuple[Mode, ...] = MODES
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for mode in modes:
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


def document_rank(hits: list[RunbookHit], document: str) -> int | None:
    """Rank of the first result from ``document`` (file name), 1-based."""
    return next((i for i, h in enumerate(hits, 1) if h.source.rsplit("/", 1)[-1] == document), None)


def most_from_one_document(hits: list[RunbookHit], top: int = 5) -> int:
    counts: dict[str, int] = {}
    for hit in hits[:top]:
        counts[hit.source] = counts.get(hit.source, 0) + 1
    return max(counts.values(), default=0)


async def nearest(index: RunbookIndex, queries: list[dict[str, Any]]) -> list[float]:
    """The nearest chunk's cosine similarity for each query: what the no-good-match gate (MIN_SIMILARITY) reads."""
    return [s for item in queries if (s := await index.nearest_similarity(item["query"])) is not None]


async def evaluate_by_document(index: RunbookIndex, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Document recall@3 (overall and per expected document), the no-match answers, and crowding of the top 5."""
    ranks: list[int | None] = []
    per_doc: dict[str, list[int | None]] = {}
    misses: list[dict[str, Any]] = []
    crowded = 0
    none_said = none_total = gated = 0
    for item in queries:
        result = await index.search(item["query"], limit=DEPTH, mode="hybrid")
        if item.get("none"):
            none_total += 1
            none_said += not result.hits
            continue
        gated += not result.hits
        rank = document_rank(result.hits, item["expect"])
        ranks.append(rank)
        per_doc.setdefault(item["expect"], []).append(rank)
        crowded += most_from_one_document(result.hits) > 2
        if rank is None or rank > 3:
            top = [f"{h.source.rsplit('/', 1)[-1]} § {h.section}" for h in result.hits[:3]]
            misses.append({"query": item["query"], "rank": rank, "expect": item["expect"], "top3": top})

    def recall(values: list[int | None]) -> float:
        return sum(1 for r in values if r is not None and r <= 3) / max(1, len(values))

    return {
        "queries": len(ranks),
        "recall@3": recall(ranks),
        "recall@5": sum(1 for r in ranks if r is not None and r <= 5) / max(1, len(ranks)),
        "by_document": {doc: recall(values) for doc, values in sorted(per_doc.items())},
        "top5_with_more_than_2_of_one_document": crowded,
        "no_match_said": f"{none_said}/{none_total}",
        "answerable_but_no_match": gated,
        "misses": misses,
    }


def homelab_report(embedder: OnnxMiniLmEmbedding, runbooks: Path) -> dict[str, Any]:
    """The site-notes set: bundled runbooks plus ``tests/eval/homelab`` in one index, diversified and not."""
    queries = load_queries(HOMELAB_QUERIES)
    with tempfile.TemporaryDirectory(prefix="sre-triage-eval-") as tmp:
        client = make_client(Path(tmp))
        summary = ingest_blocking(client, embedder, [runbooks, HOMELAB_DOCS], progress=False)
        print(summary.line(), file=sys.stderr)
        report = {}
        for label, per_document in (("diversified", MAX_PER_DOCUMENT), ("rank order", None)):
            index = RunbookIndex(embedder, client=client, per_document=per_document)
            report[label] = asyncio.run(evaluate_by_document(index, queries))
        answerable = [q for q in queries if not q.get("none")]
        report["similarity"] = {
            "answerable_min": min(asyncio.run(nearest(index, answerable))),
            "unrelated_max": max(asyncio.run(nearest(index, [q for q in queries if q.get("none")]))),
        }
    return report


def print_homelab(report: dict[str, Any], misses: bool) -> None:
    first = report["diversified"]
    print(f"\nsite notes ({HOMELAB_DOCS.relative_to(ROOT)}) next to the bundled runbooks, "
          f"{first['queries']} queries, hybrid, recall by document")  # fmt: skip
    print(f"{'results':<12} {'recall@3':>9} {'recall@5':>9} {'top 5 crowded':>14} {'no match said':>14}")
    for label in ("diversified", "rank order"):
        r = report[label]
        print(f"{label:<12} {r['recall@3']:>9.3f} {r['recall@5']:>9.3f} "
              f"{r['top5_with_more_than_2_of_one_document']:>14} {r['no_match_said']:>14}")  # fmt: skip
    print("recall@3 by document (diversified / rank order):")
    for doc, value in first["by_document"].items():
        print(f"  {doc:<20} {value:.2f} / {report['rank order']['by_document'][doc]:.2f}")
    sim = report["similarity"]
    print(f"nearest-chunk similarity: answerable questions lowest {sim['answerable_min']:.3f}, unrelated ones "
          f"highest {sim['unrelated_max']:.3f} (no-match threshold {MIN_SIMILARITY})")  # fmt: skip
    if first["answerable_but_no_match"]:
        print(f"answerable queries answered with no match: {first['answerable_but_no_match']}")
    if misses:
        for miss in first["misses"]:
            print(
                f"\nMISS (rank {miss['rank']}): {miss['query'][:160]}\n  want: {miss['expect']}\n  got:  {miss['top3']}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=Path, default=ROOT / "tests/eval/retrieval_queries.yaml")
    parser.add_argument("--runbooks", type=Path, default=ROOT / "runbooks")
    parser.add_argument("--misses", action="store_true", help="list the queries not answered in the top 3")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--no-homelab", action="store_true", help="skip the site-notes document set")
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
        # what diversifying by document costs here, where every runbook is about one topic: a runbook's third
        # section moves below the best sections of other runbooks
        plain = RunbookIndex(embedder, client=client, per_document=None)
        report["hybrid, rank order"] = asyncio.run(evaluate(plain, queries, ("hybrid",)))["hybrid"]
        report["similarity_min"] = min(asyncio.run(nearest(index, queries)))
    homelab = None if args.no_homelab else homelab_report(embedder, args.runbooks)
    if args.json:
        print(json.dumps({**report, "homelab": homelab}, indent=2))
        return 0
    print(f"{len(queries)} queries, {summary.chunks_total} chunks, {elapsed:.1f} s")
    print(f"nearest-chunk similarity of the queries: lowest {report['similarity_min']:.3f} "
          f"(no-match threshold {MIN_SIMILARITY})")  # fmt: skip
    print(f"{'retriever':<18} {'recall@1':>9} {'recall@3':>9} {'MRR':>7} {'r@3 even':>9} {'r@3 odd':>8}")
    for mode in (*MODES, "hybrid, rank order"):
        r = report[mode]
        label = "bm25" if mode == "keyword" else mode
        print(f"{label:<18} {r['recall@1']:>9.3f} {r['recall@3']:>9.3f} {r['mrr']:>7.3f} "
              f"{r['recall@3_even']:>9.3f} {r['recall@3_odd']:>8.3f}")  # fmt: skip
    if args.misses:
        for miss in report["hybrid"]["misses"]:
            want = "; ".join(f"{e['file']} § {e['section']}" for e in miss["expect"])
            print(f"\nMISS (rank {miss['rank']}): {miss['query'][:160]}\n  want: {want}\n  got:  {miss['top3']}")
    if homelab is not None:
        print_homelab(homelab, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
