"""Incremental ingestion of Markdown runbooks and Ansible YAML into the runbook collection.

Each file is identified by ``<folder name>/<path inside the folder>`` and fingerprinted by the sha256 of its bytes
(plus the chunker version, so a new chunker re-chunks everything). An unchanged file is skipped; a changed file's
chunks are replaced; a file that disappeared (or can no longer be read) loses its chunks. Sources are only read.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.runbooks.ansible import chunk_ansible
from tools.runbooks.chunking import CHUNKER_VERSION, Chunk, ChunkingError, chunk_markdown, is_not_a_runbook
from tools.runbooks.collection import bump_revision, open_collection
from tools.runbooks.embeddings import RunbookEmbedder

MARKDOWN_SUFFIXES = {".md", ".markdown"}
YAML_SUFFIXES = {".yml", ".yaml"}
# Chroma's SQLite backend limits the variables of one statement; this stays well below it. Chunks of several
# files are embedded and written together up to this many: on a 2-core host one upsert of 256 chunks took about
# a third of the time of eighteen upserts of 14, and a larger embedding call keeps every core busy.
WRITE_BATCH = 256


@dataclass
class IngestSummary:
    """What one ingest run did."""

    seen: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    chunks_written: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one-line summary printed after every ingest."""
        return (
            f"ingest: {self.seen} files seen, {self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.unchanged} unchanged, {self.skipped} skipped; {self.chunks_written} chunks written, "
            f"{self.chunks_total} in the index; {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class SourceFile:
    key: str
    path: Path


def scan(roots: Iterable[Path]) -> Iterator[SourceFile]:
    """Every Markdown/YAML file under the roots (recursive, hidden folders skipped), keyed by folder name + path."""
    used: dict[str, Path] = {}
    for root in roots:
        root = root.resolve()
        if not root.is_dir():
            continue
        label = root.name
        if label in used and used[label] != root:
            # Two folders with the same name would collide; the parent name tells them apart.
            label = f"{root.parent.name}-{root.name}"
        used[label] = root
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            if path.suffix.lower() in MARKDOWN_SUFFIXES | YAML_SUFFIXES:
                yield SourceFile(f"{label}/{rel.as_posix()}", path)


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(CHUNKER_VERSION.encode() + b"\0" + data).hexdigest()


def chunk_file(key: str, data: bytes) -> list[Chunk]:
    """Decode and chunk one file; ChunkingError says why a file cannot be indexed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ChunkingError(f"not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8") from exc
    if Path(key).suffix.lower() in YAML_SUFFIXES:
        return chunk_ansible(text, key)
    if is_not_a_runbook(text):
        raise ChunkingError("marked <!-- not-a-runbook -->")
    chunks = chunk_markdown(text, key)
    if not chunks:
        raise ChunkingError("no text to index")
    return chunks


def chunk_id(key: str, ordinal: int) -> str:
    return f"{hashlib.sha1(key.encode()).hexdigest()[:16]}:{ordinal:04d}"


def indexed_files(collection: Any) -> dict[str, tuple[str, list[str]]]:
    """source key → (fingerprint, chunk ids) of what the collection holds now."""
    found: dict[str, tuple[str, list[str]]] = {}
    got = collection.get(include=["metadatas"])
    for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
        key = str(meta.get("source", ""))
        digest, ids = found.get(key, (str(meta.get("file_hash", "")), []))
        ids.append(cid)
        found[key] = (digest, ids)
    return found


@dataclass
class _PendingWrites:
    """Chunks waiting to be embedded and written, and the chunk ids they replace."""

    deletes: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, digest: str, chunks: list[Chunk], replaces: list[str]) -> None:
        self.deletes.extend(replaces)
        self.ids.extend(chunk_id(key, c.ordinal) for c in chunks)
        self.docs.extend(c.search_text for c in chunks)
        self.metas.extend(
            {**c.metadata(), "file_hash": digest, "body_offset": len(c.search_text) - len(c.text)} for c in chunks
        )

    def flush(self, collection: Any, embedder: RunbookEmbedder) -> None:
        """Embed every pending chunk in one call, then replace the old chunks with them."""
        vectors = embedder(self.docs) if self.docs else []
        if self.deletes:
            collection.delete(ids=self.deletes)
        for start in range(0, len(self.ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            collection.upsert(ids=self.ids[start:end], embeddings=vectors[start:end], documents=self.docs[start:end],
                              metadatas=self.metas[start:end])  # fmt: skip
        self.deletes, self.ids, self.docs, self.metas = [], [], [], []


def _sync_file(
    source: SourceFile, before: dict[str, tuple[str, list[str]]], summary: IngestSummary, pending: _PendingWrites
) -> None:
    """Queue one file's chunks when it is new or changed (ChunkingError/OSError propagate)."""
    data = source.path.read_bytes()
    digest = fingerprint(data)
    old = before.get(source.key)
    if old is not None and old[0] == digest:
        summary.unchanged += 1
        return
    chunks = chunk_file(source.key, data)
    if old is not None:
        summary.changed += 1
    else:
        summary.added += 1
    pending.add(source.key, digest, chunks, old[1] if old is not None else [])
    summary.chunks_written += len(chunks)


def ingest_blocking(
    client: Any,
    embedder: RunbookEmbedder,
    roots: Iterable[Path],
    *,
    rebuild: bool = False,
    progress: bool | None = None,
    on_message: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Bring the collection in line with the files under ``roots``; returns what changed.

    Runs in the calling thread (ONNX and Chroma block for seconds).
    """
    started = time.perf_counter()
    summary = IngestSummary()
    collection = open_collection(client, embedder, create=True, rebuild=rebuild)
    assert collection is not None  # create=True always yields one
    before = indexed_files(collection)
    roots = list(roots)
    files = list(scan(roots))
    # A folder that is missing right now (unmounted share, typo) must not wipe what was indexed from it.
    absent = {root.name for root in roots if not root.is_dir()}
    summary.seen = len(files)
    show = sys.stderr.isatty() if progress is None else progress
    bar: Any = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="ingest", file=sys.stderr, leave=False)
    seen_keys: set[str] = set()
    pending = _PendingWrites()
    for source in files:
        try:
            _sync_file(source, before, summary, pending)
            seen_keys.add(source.key)
        except (ChunkingError, OSError) as exc:
            summary.skipped += 1
            summary.messages.append(f"skipped {source.path}: {exc}")
            if on_message is not None:
                on_message(summary.messages[-1])
        if len(pending.ids) >= WRITE_BATCH:
            pending.flush(collection, embedder)
        if bar is not None:
            bar.update(1)
    pending.flush(collection, embedder)
    if bar is not None:
        bar.close()
    for key, (_, ids) in before.items():
        if key not in seen_keys and key.split("/", 1)[0] not in absent:
            collection.delete(ids=ids)
            summary.removed += 1
    if summary.added or summary.changed or summary.removed or rebuild:
        bump_revision(collection)
    summary.chunks_total = int(collection.count())
    summary.seconds = time.perf_counter() - started
    return summary
