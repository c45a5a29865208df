"""Small Hugging Face-style checkpoints, and their conversion to GGUF with gguf-py alone (never pyscan).

The conversion does what llama.cpp's convert_hf_to_gguf.py does: TensorNameMap names, 1-D
tensors and norms upcast to F32, +1 on Gemma-family norms (added in F32), llama's per-head Q/K
permutation, and the other tensors cast or quantized with gguf.quants.quantize.  ``mistakes``
breaks it the ways real conversions have been broken.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np
import safetensors.numpy

Array = np.ndarray[Any, Any]
HIDDEN, FFN, VOCAB, N_HEAD, N_KV_HEAD, N_BLOCKS = 64, 128, 48, 4, 2, 2
Q = gguf.GGMLQuantizationType


def hf_tensors(arch: str, seed: int = 0) -> dict[str, Array]:
    """HF names -> arrays: BF16 weights and norms, an F32 lm_head (llama)."""
    rng = np.random.default_rng(seed)

    def bf16(*shape: int, loc: float = 0.0, scale: float = 0.05) -> Array:
        return rng.normal(loc, scale, shape).astype(np.float32).astype(ml_dtypes.bfloat16)

    head_dim = HIDDEN // N_HEAD
    tensors = {"model.embed_tokens.weight": bf16(VOCAB, HIDDEN), "model.norm.weight": bf16(HIDDEN, loc=0.1)}
    for i in range(N_BLOCKS):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": bf16(HIDDEN, loc=0.2, scale=0.3),
            p + "post_attention_layernorm.weight": bf16(HIDDEN, loc=0.2, scale=0.3),
            p + "self_attn.q_proj.weight": bf16(N_HEAD * head_dim, HIDDEN),
            p + "self_attn.k_proj.weight": bf16(N_KV_HEAD * head_dim, HIDDEN),
            p + "self_attn.v_proj.weight": bf16(N_KV_HEAD * head_dim, HIDDEN),
            p + "self_attn.o_proj.weight": bf16(HIDDEN, N_HEAD * head_dim),
            p + "mlp.gate_proj.weight": bf16(FFN, HIDDEN),
            p + "mlp.up_proj.weight": bf16(FFN, HIDDEN),
            p + "mlp.down_proj.weight": bf16(HIDDEN, FFN),
        }
        if arch == "gemma3":
            tensors |= {
                p + "self_attn.q_norm.weight": bf16(head_dim, loc=0.1),
                p + "self_attn.k_norm.weight": bf16(head_dim, loc=0.1),
                p + "pre_feedforward_layernorm.weight": bf16(HIDDEN, loc=0.1),
                p + "post_feedforward_layernorm.weight": bf16(HIDDEN, loc=0.1),
            }
    if arch == "llama":
        tensors["lm_head.weight"] = rng.normal(0, 0.05, (VOCAB, HIDDEN)).astype(np.float32)
    return tensors


def config(arch: str) -> dict[str, Any]:
    return {
        "architectures": ["Gemma3ForCausalLM" if arch == "gemma3" else "LlamaForCausalLM"],
        "model_type": "gemma3_text" if arch == "gemma3" else "llama",
        "num_hidden_layers": N_BLOCKS,
        "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_KV_HEAD,
        "hidden_size": HIDDEN,
    }


def write_checkpoint(
    folder: Path, arch: str, shards: int = 1, seed: int = 0, extra: dict[str, Array] | None = None
) -> dict[str, Array]:
    """config.json and model.safetensors, or `shards` files with model.safetensors.index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {**hf_tensors(arch, seed), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(config(arch)))
    if shards == 1:
        safetensors.numpy.save_file(tensors, str(folder / "model.safetensors"))
        return tensors
    names = list(tensors)
    weight_map = {}
    for k in range(shards):
        file_name = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = names[k::shards]
        safetensors.numpy.save_file({n: tensors[n] for n in part}, str(folder / file_name))
        weight_map |= dict.fromkeys(part, file_name)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return tensors


def permute(w: Array, n_head: int) -> Array:
    """llama.cpp's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# What the conversion stores per kind of HF tensor (the rest: F16).
DEFAULT_TYPES = {"q_proj": Q.Q8_0, "k_proj": Q.Q4_0, "gate_proj": Q.Q8_0, "up_proj": Q.Q4_0, "v_proj": Q.BF16,
                 "o_proj": Q.F32, "embed_tokens": Q.Q8_0, "lm_head": Q.F16, "down_proj": Q.F16}  # fmt: skip


def kind(hf_name: str) -> str:
    return hf_name.split(".")[-2]


def convert(
    tensors: dict[str, Array], arch: str, path: Path, mistakes: frozenset[str] = frozenset(),
    types: dict[str, Any] | None = None,
) -> dict[str, tuple[str, Any, Array]]:  # fmt: skip
    """Write the GGUF; returns GGUF name -> (HF name, ggml type, the F32 array before quantization).

    mistakes: "shift-twice" (+2 on blk.0.attn_norm), "no-shift" (none on blk.1.attn_norm), "no-permute"
    (blk.0.attn_q left unpermuted), "other-layer" (blk.1.attn_v holds layer 0's v_proj), "transpose"
    (blk.0.ffn_down stored transposed).  Tensors
    the name map does not know are left out (as the converter would refuse them).
    """
    gguf_arch = gguf.MODEL_ARCH.GEMMA3 if arch == "gemma3" else gguf.MODEL_ARCH.LLAMA
    name_map = gguf.get_tensor_name_map(gguf_arch, N_BLOCKS)
    writer = gguf.GGUFWriter(os.fspath(path), gguf.MODEL_ARCH_NAMES[gguf_arch])
    writer.add_block_count(N_BLOCKS)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_KV_HEAD)
    chosen = {**DEFAULT_TYPES, **(types or {})}
    written: dict[str, tuple[str, Any, Array]] = {}
    for hf_name in tensors:
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            continue
        source = hf_name
        if name == "blk.1.attn_v.weight" and "other-layer" in mistakes:
            source = "model.layers.0.self_attn.v_proj.weight"
        data = tensors[source].astype(np.float32)  # the converter computes in F32
        if arch == "gemma3" and hf_name.endswith("norm.weight"):
            shift = {"blk.0.attn_norm.weight": 2.0 if "shift-twice" in mistakes else 1.0,
                     "blk.1.attn_norm.weight": 0.0 if "no-shift" in mistakes else 1.0}.get(name, 1.0)  # fmt: skip
            data = data + np.float32(shift)
        if arch == "llama" and hf_name.endswith("q_proj.weight") and not (
            name == "blk.0.attn_q.weight" and "no-permute" in mistakes
        ):
            data = permute(data, N_HEAD)
        if arch == "llama" and hf_name.endswith("k_proj.weight"):
            data = permute(data, N_KV_HEAD)
        if name == "blk.0.ffn_down.weight" and "transpose" in mistakes:
            data = np.ascontiguousarray(data.T)  # stored with its dimensions swapped
        qtype = Q.F32 if data.ndim == 1 else chosen.get(kind(hf_name), Q.F16)
        if qtype == Q.F32:
            writer.add_tensor(name, data)
        elif qtype == Q.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        written[name] = (hf_name, qtype, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written
