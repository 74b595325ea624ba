"""Speed of the runbook index: ingest throughput (chunks/s) and warm query latency (p50/p99).

Measures, on this machine, with the local ONNX model:
1. a fresh ingest of the bundled ``runbooks/``;
2. a fresh ingest of a generated corpus of ``--chunks`` chunks (default 5,000): Markdown files whose sections are
   paragraphs drawn from the bundled runbooks, so chunk lengths match real ones;
3. hybrid query latency with the index warm, over the evaluation queries (and on the generated corpus).

    .venv/bin/python bench/retrieval_speed.py [--chunks 5000] [--batch-size 4] [--threads 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.runbooks.chunking import Chunk, chunk_markdown, is_not_a_runbook  # noqa: E402
from tools.runbooks.collection import make_client  # noqa: E402
from tools.runbooks.embeddings import DEFAULT_BATCH_SIZE, OnnxMiniLmEmbedding  # noqa: E402
from tools.runbooks.index import RunbookIndex  # noqa: E402
from tools.runbooks.ingest import IngestSummary, ingest_blocking  # noqa: E402

SECTIONS_PER_FILE = 20


def bundled_chunks(runbooks: Path) -> list[Chunk]:
    chunks: list[Chunk] = []
    for path in sorted(runbooks.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if not is_not_a_runbook(text):
            chunks.extend(chunk_markdown(text, f"runbooks/{path.name}"))
    return chunks


def generate_corpus(target: Path, chunks: list[Chunk], total: int, seed: int = 7) -> None:
    """Write Markdown files holding ``total`` sections, each one a real chunk body under a numbered heading."""
    rng = random.Random(seed)
    files = (total + SECTIONS_PER_FILE - 1) // SECTIONS_PER_FILE
    written = 0
    for f in range(files):
        parts = [f"---\ntitle: Generated runbook {f}\nalerts: [GeneratedAlert{f}]\n---\n\n# Generated runbook {f}\n"]
        for s in range(min(SECTIONS_PER_FILE, total - written)):
            source = rng.choice(chunks)
            parts.append(f"## {source.section} {f}.{s}\n\n{source.text}\n")
            written += 1
        (target / f"generated-{f:04d}.md").write_text("\n".join(parts), encoding="utf-8")


def timed_ingest(folder: Path, embedder: OnnxMiniLmEmbedding) -> tuple[IngestSummary, RunbookIndex]:
    index_dir = Path(tempfile.mkdtemp(prefix="sre-triage-speed-"))
    atexit.register(shutil.rmtree, index_dir, True)
    client = make_client(index_dir)
    summary = ingest_blocking(client, embedder, [folder], progress=False)
    return summary, RunbookIndex(embedder, client=client)


def latency(index: RunbookIndex, queries: list[str], repeat: int) -> tuple[float, float, float]:
    async def run() -> list[float]:
        await index.search(queries[0])  # warm: loads the keyword index and the model
        samples: list[float] = []
        for _ in range(repeat):
            for query in queries:
                started = time.perf_counter()
                await index.search(query, limit=5)
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    samples = sorted(asyncio.run(run()))
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99, statistics.fmean(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runbooks", type=Path, default=ROOT / "runbooks")
    parser.add_argument("--queries", type=Path, default=ROOT / "tests/eval/retrieval_queries.yaml")
    parser.add_argument("--chunks", type=int, default=5000, help="size of the generated corpus (0 skips it)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the queries for the latency figures")
    args = parser.parse_args()
    queries = [item["query"] for item in yaml.safe_load(args.queries.read_text(encoding="utf-8"))]
    embedder = OnnxMiniLmEmbedding(batch_size=args.batch_size, threads=args.threads)
    embedder.embed_array(["load the model before timing"])

    summary, index = timed_ingest(args.runbooks, embedder)
    print(f"bundled runbooks: {summary.chunks_written} chunks in {summary.seconds:.1f} s = "
          f"{summary.chunks_per_s:.1f} chunks/s")  # fmt: skip
    p50, p99, mean = latency(index, queries, args.repeat)
    print(f"query latency (hybrid, warm, {len(queries) * args.repeat} queries, {summary.chunks_total} chunks): "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {mean:.1f} ms")  # fmt: skip

    if args.chunks:
        with tempfile.TemporaryDirectory(prefix="sre-triage-corpus-") as tmp:
            generate_corpus(Path(tmp), bundled_chunks(args.runbooks), args.chunks)
            summary, index = timed_ingest(Path(tmp), embedder)
            print(f"generated corpus: {summary.chunks_written} chunks in {summary.seconds:.1f} s = "
                  f"{summary.chunks_per_s:.1f} chunks/s")  # fmt: skip
            p50, p99, mean = latency(index, queries, 1)
            print(f"query latency (hybrid, warm, {len(queries)} queries, {summary.chunks_total} chunks): "
                  f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {mean:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
