"""The keyword side of hybrid retrieval: a tokenizer tuned for operations text and a BM25 index over chunks.

Identifiers such as ``node_filesystem_avail_bytes`` or ``KubePodCrashLooping`` are kept whole *and* split into
their parts, so both the exact metric name and the words inside it match. A light suffix stripper folds plurals
and verb forms (``restarts``/``restarting``/``restarted``) without a stemming dependency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9]|[A-Za-z0-9]")
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_STOPWORD_TEXT = (
    "a an and are as at be but by can do does for from has have how i if in into is it its me my no not of on or "
    "our so than that the their then there these this to up was we what when where which while who why will with "
    "you your should would could"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _stem(word: str) -> str:
    if word.isdigit():
        return word
    for suffix, keep in (("ing", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    # "inode"/"inodes", "degrade"/"degraded", "cache"/"caches" meet on the same stem once a final e is dropped.
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed tokens; compound identifiers yield the whole and their parts."""
    tokens: list[str] = []
    for raw in _WORD.findall(text):
        whole = raw.lower()
        parts = [p.lower() for p in _PARTS.findall(raw)]
        if len(parts) > 1 and whole not in STOPWORDS:
            tokens.append(whole)
        for part in parts:
            if part not in STOPWORDS and (len(part) > 1 or part.isdigit()):
                tokens.append(_stem(part))
    return tokens


# bm25s' defaults, the usual Okapi values.
DEFAULT_K1 = 1.5
DEFAULT_B = 0.75


class KeywordIndex:
    """BM25 (``bm25s``) over texts addressed by id (chunk ids, or one id per section).

    ``b`` is how strongly a long text is penalised for its length. Chunks are bounded in size, so the usual 0.75
    suits them; whole sections range from two lines to pages, and a long one is long because it covers more
    ground (several fixes), not because it is verbose, so section indexes use a lower ``b``.
    """

    def __init__(
        self, ids: Sequence[str], texts: Sequence[str], *, k1: float = DEFAULT_K1, b: float = DEFAULT_B
    ) -> None:
        import bm25s

        self.ids = list(ids)
        self._model: bm25s.BM25 | None = None
        corpus = [tokenize(t) for t in texts]
        if self.ids and any(corpus):
            model = bm25s.BM25(k1=k1, b=b)
            model.index(corpus, show_progress=False)
            self._model = model

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, limit: int) -> list[tuple[str, float]]:
        """Ids with positive BM25 score for ``query``, best first."""
        tokens = tokenize(query)
        if self._model is None or not tokens:
            return []
        k = min(limit, len(self.ids))
        docs, scores = self._model.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [
            (self.ids[int(doc)], float(score))
            for doc, score in zip(np.asarray(docs)[0], np.asarray(scores)[0], strict=True)
            if score > 0
        ]
