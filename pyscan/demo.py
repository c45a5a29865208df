"""A small GGUF with TinyLlama 1.1B Chat Q4_K_M's tensor layout, written with gguf-py.

22 layers at reduced width: 45 F32 norms whose values are all BF16-exact (as
in the real model), 135 Q4_K and 21 Q6_K tensors (random block bytes; pyscan
never decodes quantized data), and a 32,000-token vocabulary.  ``pyscan
--demo`` scans one to show the seed experiment's finding without a download.
"""

from __future__ import annotations

import os

import numpy as np

N_LAYERS = 22
VOCAB = 32_000


def _more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's Q4_K_M rule: these layers keep attn_v and ffn_down at Q6_K."""
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def tinyllama_layout(
    hidden: int = 256, ffn: int = 512, kv: int = 64, vocab: int = VOCAB, n_layers: int = N_LAYERS
) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, type, shape with ne0 first) for every tensor, in TinyLlama's GGUF order."""
    layout: list[tuple[str, str, tuple[int, ...]]] = [("token_embd.weight", "Q4_K", (hidden, vocab))]
    for i in range(n_layers):
        wide = "Q6_K" if _more_bits(i, n_layers) else "Q4_K"
        layout += [
            (f"blk.{i}.attn_norm.weight", "F32", (hidden,)),
            (f"blk.{i}.ffn_down.weight", wide, (ffn, hidden)),
            (f"blk.{i}.ffn_gate.weight", "Q4_K", (hidden, ffn)),
            (f"blk.{i}.ffn_up.weight", "Q4_K", (hidden, ffn)),
            (f"blk.{i}.ffn_norm.weight", "F32", (hidden,)),
            (f"blk.{i}.attn_k.weight", "Q4_K", (hidden, kv)),
            (f"blk.{i}.attn_output.weight", "Q4_K", (hidden, hidden)),
            (f"blk.{i}.attn_q.weight", "Q4_K", (hidden, hidden)),
            (f"blk.{i}.attn_v.weight", wide, (hidden, kv)),
        ]
    layout += [("output.weight", "Q6_K", (hidden, vocab)), ("output_norm.weight", "F32", (hidden,))]
    return layout


def bf16_exact_norms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Norm-like weights near 1.0 that carry only BF16 precision, stored as F32."""
    import ml_dtypes

    return rng.normal(1.0, 0.05, n).astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


def write_tinyllama_like(
    path: str | os.PathLike[str], big_endian: bool = False, seed: int = 0, **layout_args: int
) -> None:
    """Write the demo model to path (see the module docstring)."""
    import gguf

    rng = np.random.default_rng(seed)
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(os.fspath(path), "llama", endianess=endian)
    layout = tinyllama_layout(**layout_args)
    hidden = layout[0][2][0]
    writer.add_name("TinyLlama-like demo (reduced width)")
    writer.add_context_length(2048)
    writer.add_embedding_length(hidden)
    writer.add_block_count(sum(1 for name, _, _ in layout if name.endswith("attn_norm.weight")))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    vocab = layout[0][2][1]
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(vocab)])
    writer.add_token_scores(np.linspace(0.0, -1.0, vocab, dtype=np.float32).tolist())
    writer.add_token_types([1] * vocab)
    for name, type_name, shape in layout:
        if type_name == "F32":
            writer.add_tensor(name, bf16_exact_norms(rng, shape[0]))
            continue
        qtype = gguf.GGMLQuantizationType[type_name]
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        rows = int(np.prod(shape[1:]))
        raw = rng.integers(0, 256, size=(rows, shape[0] // block * block_bytes), dtype=np.uint8)
        writer.add_tensor(name, raw, raw_dtype=qtype)  # gguf-py derives the shape from the bytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
