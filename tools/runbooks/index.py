"""Hybrid runbook retrieval: Chroma vectors and BM25 keywords fused by reciprocal rank.

``RunbookIndex`` opens the collection lazily, keeps a BM25 index built from the chunk texts stored in Chroma (so
every host sees the same keywords, embedded or ``CHROMA_URL``), and rebuilds it when an ingest changed the
collection's revision. Blocking work (ONNX, Chroma) runs in a worker thread behind the async methods.

Ranking: three ranked lists are fused by reciprocal rank, each contributing ``1 / (RRF_K + rank)`` per section:
chunk vectors, chunk keywords, and keywords over whole sections (a long section is split into chunks for the
embedding model, but a question about it often shares words with several of its chunks at once, which no single
chunk shows). Runbooks whose front matter lists an alert name found in the query get half a first-rank share per
list, so ``HostDiskFull`` lands on the runbook declared for it. Results are one per section: split sections would
otherwise crowd the list with the same link.

Results are diversified by document: at most ``MAX_PER_DOCUMENT`` sections of one file among the first
``DIVERSE_TOP`` results, so a long bundled runbook cannot push the user's own page on the same topic out of sight;
its further sections follow after the other documents. Reciprocal rank fusion says only how the sections compare
with each other, not whether any of them fits: a query whose nearest chunk is further than ``MIN_SIMILARITY`` from
it gets no hits and a reason, instead of five unrelated sections.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from chromadb.errors import ChromaError

from tools.errors import SourceConnectError, SourceError, SourceRequestError
from tools.runbooks.collection import close_client, make_client, open_collection, revision
from tools.runbooks.embeddings import RunbookEmbedder
from tools.runbooks.keywords import KeywordIndex

SectionKey = tuple[str, str]

RRF_K = 60
CANDIDATES = 40
EXCERPT_CHARS = 280
REVISION_CHECK_S = 5.0
EMPTY_REASON = "the runbook index is empty: run `sre-triage ingest` to index runbooks/ and EXTRA_DOCS_DIRS"
# Labels that say what is affected; their values help both retrievers. Others (instance IPs, ids) are noise.
# Section lengths range from two lines to pages; see KeywordIndex for why a lower b suits them.
SECTION_B = 0.4
# Chosen on the even half of the evaluation queries and confirmed on the odd half (bench/retrieval_eval.py):
# recall@3 is flat for weights from 0.85 down to 0.3; 0.8 sits inside that range, not at its edge.
DESCRIPTIVE_WEIGHT = 0.8
DESCRIPTIVE_HEADINGS = frozenset({"symptoms", "signs", "overview", "summary", "description", "about", "impact"})
# At most this many sections of one document among the first DIVERSE_TOP results (search, reports, /ask).
MAX_PER_DOCUMENT = 2
DIVERSE_TOP = 5
# Cosine similarity of the nearest chunk below which nothing in the index is about the query. Measured with the
# local model (bench/retrieval_eval.py prints both sides): the 106 evaluation queries on the bundled runbooks reach
# 0.353 and above, the site-notes questions 0.410 and above, unrelated questions (recipes, printers, a laptop's wifi)
# 0.291 and below. The threshold sits in that gap.
MIN_SIMILARITY = 0.32
NO_GOOD_MATCH = "no runbook section matches the query well (closest similarity {similarity:.2f}, below {minimum:.2f})"
KEY_LABELS = ("job", "service", "mountpoint", "device", "fstype", "container", "name", "pool", "datastore", "type")

Mode = Literal["hybrid", "vector", "keyword"]
_T = TypeVar("_T")


@dataclass
class RunbookHit:
    """One matching runbook section."""

    source: str
    title: str
    section: str
    anchor: str
    score: float
    excerpt: str
    kind: str = "markdown"
    pinned: bool = False


@dataclass
class SearchResult:
    """Hits best first; ``reason`` explains an empty list (no index yet, nothing matched)."""

    hits: list[RunbookHit] = field(default_factory=list)
    reason: str | None = None
    took_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"hits": [asdict(h) for h in self.hits], "reason": self.reason, "took_ms": round(self.took_ms, 1)}


def query_for_alert(alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """A search query from an alert: its name (split into words too), summary, description and key labels."""
    name = alertname
    words = " ".join(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name))
    parts = [name, words]
    for key in ("summary", "description", "message"):
        value = annotations.get(key)
        if value:
            parts.append(value[:500])
    for key in KEY_LABELS:
        value = labels.get(key)
        if value:
            parts.append(f"{key} {value[:100]}")
    return "\n".join(p for p in parts if p)


def keyword_text(meta: dict[str, Any], document: str) -> str:
    """What BM25 sees of a chunk: heading path, declared alert names and body, without title and tags.

    Every chunk of a file repeats the title and tags in its embedded text; for BM25 that shared prefix would let
    the shortest sections of a matching file win by length normalisation alone.
    """
    body = document[int(meta.get("body_offset", 0)) :]
    return f"{meta.get('section_path', '')}\n{meta.get('alerts', '')}\n{body}"


def section_key(meta: Mapping[str, Any]) -> SectionKey:
    """What identifies a section across its chunks: the file and the anchor (the heading when there is none)."""
    return str(meta.get("source", "")), str(meta.get("anchor", "")) or str(meta.get("section", ""))


def section_texts(
    ids: list[str], metas: Mapping[str, Mapping[str, Any]], docs: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """One keyword text per section (heading path, alert names, every chunk's body in order), keyed by the id of
    the section's first chunk."""
    bodies: dict[SectionKey, list[str]] = {}
    first: dict[SectionKey, str] = {}
    for cid in sorted(ids, key=lambda c: (str(metas[c].get("source", "")), int(metas[c].get("ordinal", 0)))):
        meta = metas[cid]
        key = section_key(meta)
        if key not in first:
            first[key] = cid
            bodies[key] = [f"{meta.get('section_path', '')}\n{meta.get('alerts', '')}"]
        bodies[key].append(docs[cid][int(meta.get("body_offset", 0)) :])
    return [first[key] for key in first], ["\n".join(bodies[key]) for key in first]


def descriptive_sections(metas: Mapping[str, Mapping[str, Any]]) -> set[SectionKey]:
    """Sections that describe the problem instead of saying what to do: the introduction under a Markdown
    runbook's title (when the runbook has other sections) and headings such as "Symptoms" or "Overview"."""
    keys_by_source: dict[str, set[SectionKey]] = {}
    candidates: set[SectionKey] = set()
    for meta in metas.values():
        if meta.get("kind", "markdown") != "markdown":
            continue
        key = section_key(meta)
        keys_by_source.setdefault(key[0], set()).add(key)
        path = [p for p in str(meta.get("section_path", "")).split(" > ") if p]
        heading = str(meta.get("section", "")).strip().lower().rstrip(":")
        if len(path) <= 1 or heading in DESCRIPTIVE_HEADINGS:
            candidates.add(key)
    return {key for key in candidates if len(keys_by_source[key[0]]) > 1}


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def diversify(hits: list[RunbookHit], per_document: int = MAX_PER_DOCUMENT, top: int = DIVERSE_TOP) -> list[RunbookHit]:
    """``hits`` reordered so that no document has more than ``per_document`` sections among the first ``top``.

    A document's further sections move down, behind the best sections of other documents, keeping their order;
    when there are too few other documents to fill ``top``, they fill it again in rank order.
    """
    head: list[RunbookHit] = []
    deferred: list[RunbookHit] = []
    per_source: dict[str, int] = {}
    for hit in hits:
        if len(head) < top and per_source.get(hit.source, 0) < per_document:
            per_source[hit.source] = per_source.get(hit.source, 0) + 1
            head.append(hit)
        else:
            deferred.append(hit)
    # the deferred ones keep their rank order, after the head (and fill it when other documents ran out)
    return head + deferred


@dataclass
class _Snapshot:
    revision: tuple[str, int]  # (collection id, ingest revision): a rebuild starts a new collection
    ids: list[str]
    metas: dict[str, dict[str, Any]]
    docs: dict[str, str]
    keywords: KeywordIndex
    sections: KeywordIndex  # one entry per section, under the id of its first chunk
    alerts: dict[str, set[str]]  # lower-case alert name → sources declaring it
    descriptive: set[SectionKey] = field(default_factory=set)


class RunbookIndex:
    """Search the runbook collection. Create once at start-up, share across requests."""

    def __init__(
        self,
        embedder: RunbookEmbedder,
        *,
        chroma_dir: Path | None = None,
        chroma_url: str | None = None,
        client: Any = None,
        per_document: int | None = MAX_PER_DOCUMENT,
    ) -> None:
        self.embedder = embedder
        # sections of one document allowed among the first DIVERSE_TOP results; None: plain rank order (benchmarks)
        self.per_document = per_document
        self._chroma_dir = chroma_dir
        self._chroma_url = chroma_url
        self._client = client
        self._owns_client = client is None
        self._collection: Any = None
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    # -- opening and keeping the keyword index in step -------------------------------------------------------

    def _open(self) -> Any:
        if self._client is None:
            self._client = make_client(self._chroma_dir, self._chroma_url)
        if self._collection is None:
            self._collection = open_collection(self._client, self.embedder, create=False)
        return self._collection

    def _current(self) -> _Snapshot | None:
        with self._lock:
            now = time.monotonic()
            if self._snapshot is not None and now - self._checked_at < REVISION_CHECK_S:
                return self._snapshot
            if self._client is None:
                self._client = make_client(self._chroma_dir, self._chroma_url)
            # Re-opened on every check: another process may have rebuilt (another model) or dropped it meanwhile.
            collection = open_collection(self._client, self.embedder, create=False)
            self._collection = collection
            self._checked_at = now
            if collection is None:
                self._snapshot = None
                return None
            rev = (str(collection.id), revision(collection))
            if self._snapshot is None or self._snapshot.revision != rev:
                self._snapshot = self._load(collection, rev)
            return self._snapshot

    def _load(self, collection: Any, rev: tuple[str, int]) -> _Snapshot:
        got = collection.get(include=["metadatas", "documents"])
        ids = list(got["ids"])
        metas = {cid: dict(m) for cid, m in zip(ids, got["metadatas"] or [], strict=True)}
        docs = dict(zip(ids, got["documents"] or [], strict=True))
        alerts: dict[str, set[str]] = {}
        for meta in metas.values():
            for name in str(meta.get("alerts", "")).split("\n"):
                if name.strip():
                    alerts.setdefault(name.strip().lower(), set()).add(str(meta["source"]))
        texts = [keyword_text(metas[i], docs[i]) for i in ids]
        section_ids, section_docs = section_texts(ids, metas, docs)
        sections = KeywordIndex(section_ids, section_docs, b=SECTION_B)
        keywords = KeywordIndex(ids, texts)
        return _Snapshot(rev, ids, metas, docs, keywords, sections, alerts, descriptive_sections(metas))

    def refresh(self) -> None:
        """Forget the cached keyword index; the next search reloads it (tests, after an in-process ingest)."""
        with self._lock:
            self._snapshot = None
            self._collection = None
            self._checked_at = 0.0

    # -- retrieval ---------------------------------------------------------------------------------------------

    def _vector(self, query: str, limit: int) -> tuple[list[str], float]:
        """Chunk ids nearest to the query, best first, and the cosine similarity of the nearest one."""
        vector = self.embedder.embed_query([query])[0]
        got = self._collection.query(query_embeddings=[vector], n_results=limit, include=["distances"])
        distances = got["distances"][0] if got.get("distances") else []
        # the collection's space is cosine: distance = 1 - similarity
        return list(got["ids"][0]), (1.0 - float(distances[0])) if distances else 0.0

    def _alert_sources(self, snap: _Snapshot, query: str) -> set[str]:
        sources: set[str] = set()
        for token in re.findall(r"[A-Za-z0-9_:-]+", query):
            sources |= snap.alerts.get(token.lower(), set())
        return sources

    def _search_blocking(self, query: str, limit: int, mode: Mode, pinned: list[str] | None = None) -> SearchResult:
        started = time.perf_counter()
        snap = self._current()
        if snap is None or not snap.ids:
            return SearchResult(reason=EMPTY_REASON, took_ms=(time.perf_counter() - started) * 1000)
        pool = max(CANDIDATES, limit * 4)
        lists: list[list[str]] = []
        similarity: float | None = None
        if mode in ("hybrid", "vector"):
            nearest, similarity = self._vector(query, min(pool, len(snap.ids)))
            # an ingest may have added chunks since the snapshot; they join at the next revision check
            lists.append([cid for cid in nearest if cid in snap.metas])
        if mode in ("hybrid", "keyword"):
            lists.append([cid for cid, _ in snap.keywords.search(query, pool)])
        if mode == "hybrid":
            lists.append([cid for cid, _ in snap.sections.search(query, pool) if cid in snap.metas])
        declared = self._alert_sources(snap, query) if mode == "hybrid" else set()
        if similarity is not None and similarity < MIN_SIMILARITY and not declared:
            # nothing is about the query: only the section an alert's runbook_url names is worth showing
            hits = [self._hit(snap, cid, 1.0 + 1.0 / (1 + i), pinned=True) for i, cid in enumerate(pinned or [])]
            weak = None if hits else NO_GOOD_MATCH.format(similarity=similarity, minimum=MIN_SIMILARITY)
            return SearchResult(hits=hits, reason=weak, took_ms=(time.perf_counter() - started) * 1000)
        fused, best = self._fuse(snap, lists)
        if mode == "hybrid":
            prior = 0.5 * len(lists) / (RRF_K + 1)
            for key in fused:
                if key[0] in declared:
                    fused[key] += prior
        for key in fused.keys() & snap.descriptive:
            fused[key] *= DESCRIPTIVE_WEIGHT
        ranked = [(best[key], score) for key, score in sorted(fused.items(), key=lambda item: item[1], reverse=True)]
        hits = [self._hit(snap, cid, 1.0 + 1.0 / (1 + i), pinned=True) for i, cid in enumerate(pinned or [])]
        hits = self._select([*hits, *(self._hit(snap, cid, score) for cid, score in ranked)], limit)
        reason = None if hits else "no runbook section matches the query"
        return SearchResult(hits=hits, reason=reason, took_ms=(time.perf_counter() - started) * 1000)

    @staticmethod
    def _fuse(snap: _Snapshot, lists: list[list[str]]) -> tuple[dict[SectionKey, float], dict[SectionKey, str]]:
        """Reciprocal rank fusion over sections: a long section split into several chunks counts once per list,
        at the rank of its best chunk, so it neither crowds out nor outvotes short sections."""
        fused: dict[SectionKey, float] = {}
        best: dict[SectionKey, tuple[float, str]] = {}
        for ranked in lists:
            seen: set[SectionKey] = set()
            for cid in ranked:
                key = section_key(snap.metas[cid])
                if key in seen:
                    continue
                seen.add(key)
                share = 1.0 / (RRF_K + len(seen))
                fused[key] = fused.get(key, 0.0) + share
                if key not in best or share > best[key][0]:
                    best[key] = (share, cid)
        return fused, {key: cid for key, (_, cid) in best.items()}

    def _select(self, hits: list[RunbookHit], limit: int) -> list[RunbookHit]:
        """The first ``limit`` distinct sections, diversified (see :func:`diversify`)."""
        seen: set[tuple[str, str]] = set()
        unique: list[RunbookHit] = []
        for hit in hits:
            key = (hit.source, hit.anchor or hit.section)
            if key not in seen:
                seen.add(key)
                unique.append(hit)
        if self.per_document is None:
            return unique[:limit]
        return diversify(unique, self.per_document)[:limit]

    @staticmethod
    def _hit(snap: _Snapshot, cid: str, score: float, pinned: bool = False) -> RunbookHit:
        meta = snap.metas[cid]
        body = snap.docs.get(cid, "")[int(meta.get("body_offset", 0)) :]
        return RunbookHit(
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            section=str(meta.get("section", "")),
            anchor=str(meta.get("anchor", "")),
            score=score,
            excerpt=_excerpt(body),
            kind=str(meta.get("kind", "markdown")),
            pinned=pinned,
        )

    def _pinned_for_url(self, snap: _Snapshot, url: str) -> list[str]:
        """Chunks of the indexed runbook a ``runbook_url`` points at: the anchored section, else the first one."""
        parts = urlsplit(url.strip())
        path = unquote(parts.path).rstrip("/")
        if not path:
            return []
        name = path.rsplit("/", 1)[-1]
        stem = name.rsplit(".", 1)[0] if "." in name else name
        anchor = unquote(parts.fragment).lower()
        candidates = [
            cid for cid in snap.ids
            if (src := str(snap.metas[cid].get("source", ""))).endswith("/" + name)
            or src.rsplit("/", 1)[-1].rsplit(".", 1)[0] == stem
        ]  # fmt: skip
        if not candidates:
            return []
        candidates.sort(key=lambda cid: int(snap.metas[cid].get("ordinal", 0)))
        if anchor:
            anchored = [cid for cid in candidates if str(snap.metas[cid].get("anchor", "")) == anchor]
            if anchored:
                return anchored[:1]
        return candidates[:1]

    def _search_alert_blocking(
        self, alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str], limit: int
    ) -> SearchResult:
        snap = self._current()
        pinned: list[str] = []
        url = annotations.get("runbook_url") or annotations.get("runbook")
        if snap is not None and url:
            pinned = self._pinned_for_url(snap, url)
        return self._search_blocking(query_for_alert(alertname, labels, annotations), limit, "hybrid", pinned)

    def _count_blocking(self) -> int:
        with self._lock:
            collection = self._open()
        return 0 if collection is None else int(collection.count())

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run blocking work in a thread; Chroma's own errors leave as ``SourceError`` (source ``chroma``)."""
        try:
            return await asyncio.to_thread(func, *args)
        except SourceError:
            raise
        except (ConnectionError, TimeoutError, httpx.TransportError) as exc:
            raise SourceConnectError(f"cannot reach the runbook index: {type(exc).__name__}", source="chroma",
                                     url=self._chroma_url or "") from exc  # fmt: skip
        except ChromaError as exc:
            raise SourceRequestError(f"runbook index error: {exc.name()}", source="chroma",
                                     url=self._chroma_url or "") from exc  # fmt: skip

    # -- the async API -----------------------------------------------------------------------------------------

    async def search(self, query: str, limit: int = 5, mode: Mode = "hybrid") -> SearchResult:
        """Runbook sections for a free-text query, best first; an empty index gives a reason, not an error."""
        return await self._run(self._search_blocking, query, limit, mode)

    async def search_alert(
        self, alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str], limit: int = 5
    ) -> SearchResult:
        """Runbook sections for an alert; the section its ``runbook_url`` annotation points at comes first."""
        return await self._run(self._search_alert_blocking, alertname, labels, annotations, limit)

    async def runbook_search(self, query: str, limit: int = 5) -> str:
        """Plain-text search results for a tool-using agent: one block per section, or why there is none."""
        result = await self.search(query, limit)
        if not result.hits:
            return result.reason or "no runbook section matches the query"
        blocks = [
            f"[{i}] {h.title} — {h.section} ({h.source}{'#' + h.anchor if h.anchor else ''})\n{h.excerpt}"
            for i, h in enumerate(result.hits, 1)
        ]
        return "\n\n".join(blocks)

    def _nearest_blocking(self, query: str) -> float | None:
        snap = self._current()
        if snap is None or not snap.ids:
            return None
        return self._vector(query, 1)[1]

    async def nearest_similarity(self, query: str) -> float | None:
        """Cosine similarity of the chunk nearest to ``query``, the figure ``MIN_SIMILARITY`` gates (None when the
        index is empty); for measuring where the gate sits."""
        return await self._run(self._nearest_blocking, query)

    async def count(self) -> int:
        """Chunks in the index (0 when there is no index yet)."""
        return await self._run(self._count_blocking)

    async def aclose(self) -> None:
        """Release the Chroma client this index opened itself (a client passed in stays open)."""
        with self._lock:
            client, self._collection, self._snapshot = self._client, None, None
            if self._owns_client:
                self._client = None
        if self._owns_client and client is not None:
            await asyncio.to_thread(close_client, client)

    async def ping(self) -> bool:
        """Readiness: the store answers. An empty index is ready (searches say it is empty); never embeds."""
        try:
            await self.count()
        except SourceError:
            return False
        return True
