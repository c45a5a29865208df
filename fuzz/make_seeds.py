"""Write the fuzzers' seed corpora: small valid GGUF files (gguf.GGUFWriter, both byte orders) and kernel inputs.

    python fuzz/make_seeds.py OUT_DIR      ->  OUT_DIR/parser/*.gguf  and  OUT_DIR/kernels/*.bin

Nothing here is checked in: fuzz/run.sh regenerates the seeds on every run.  The GGUF files
are written with gguf-py, not pyscan, so the seeds do not inherit pyscan's idea of the format.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np

# F32 words that sit on the edges of every rule the kernels apply (see csrc/kernels/kernel.h).
F32_EDGES = [
    0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000, 0x3F800001, 0x3F808000, 0x3F818000,
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7F800001, 0xFF800001, 0x7FC00000, 0x7F80FFFF, 0x7FFFFFFF,
    0x477FE000, 0x477FF000, 0x477FEFFF, 0x47800000, 0x33800000, 0x33000000, 0x33000001, 0x387FC000, 0x38800000,
    0x3F7F8000, 0x3F7FC000, 0x40490FDB, 0xC0490FDB, 0x00400000, 0x00008000, 0x7F7F8000, 0x7F7FC000, 0x3E99999A,
]  # fmt: skip
HALF_EDGES = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0x7C00, 0xFC00, 0x7C01, 0x7E00, 0x7F80, 0x7F81]


def f32_words(n: int, seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    edges = np.array(F32_EDGES, dtype=np.uint32)
    words[: min(n, len(edges))] = edges[:n]
    return words


def write_gguf(path: Path, big_endian: bool, variant: int) -> None:
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(os.fspath(path), "llama", endianess=endian)
    writer.add_name(f"seed {variant}")
    rng = np.random.default_rng(variant)
    if variant == 0:
        writer.add_bool("general.flag", True)
        writer.add_uint32("llama.context_length", 2048)
        writer.add_float32("llama.rope.freq_base", 10000.0)
        writer.add_array("tokenizer.ggml.tokens", ["<s>", "", "é", "tok"])
        writer.add_array("tokenizer.ggml.scores", [0.0, -1.5, 2.25])
        writer.add_tensor("token_embd.weight", f32_words(64, 1).view(np.float32).reshape(2, 32))
        writer.add_tensor(
            "blk.0.attn_norm.weight", rng.normal(1, 0.1, 16).astype(ml_dtypes.bfloat16).astype(np.float32)
        )
        writer.add_tensor("half.weight", np.array(HALF_EDGES, dtype=np.uint16).view(np.float16))
        writer.add_tensor(
            "brain.weight", np.array(HALF_EDGES, dtype=np.uint16), raw_dtype=gguf.GGMLQuantizationType.BF16
        )
        q8 = rng.integers(0, 256, size=(2, 34), dtype=np.uint8)
        writer.add_tensor("quant.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("ints.weight", np.arange(5, dtype=np.int32))
        writer.add_tensor("double.weight", np.linspace(-1, 1, 3))
    elif variant == 1:
        writer.add_custom_alignment(64)
        writer.add_tensor("a.weight", f32_words(7, 2).view(np.float32))
        writer.add_tensor("empty.weight", np.zeros((0, 5), dtype=np.float32))
        writer.add_tensor("b.weight", (rng.normal(0, 1, (3, 5)) + 1).astype(np.float32))
    else:
        writer.add_array("tokenizer.ggml.token_type", [1, 2, 3, 1])
        writer.add_string("general.architecture.note", "metadata only")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def safetensors_seed() -> bytes:
    """A small safetensors file, by hand (u64 header length, JSON header, data): pyscan.open reads both formats."""
    data = f32_words(6, 4).tobytes() + np.array(HALF_EDGES[:4], dtype="<u2").tobytes()
    header = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "h": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
    }
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


# The kernel fuzzer's input: a 10-byte control header (see fuzz/kernels_fuzz.c), then data.
def kernel_seed(dtype: int, op: int, param: int, swap: int, offset: int, row_len: int, group: int, qmax: int,
                tile: int, data: bytes) -> bytes:  # fmt: skip
    return struct.pack("<BBBBHHBB", dtype, op, param, swap | offset << 1, row_len, group, qmax, tile) + data


def kernel_seeds() -> dict[str, bytes]:
    f32 = f32_words(70, 3).tobytes()
    half = np.array(HALF_EDGES * 5, dtype=np.uint16).tobytes()
    return {
        "count-f32": kernel_seed(0, 0, 7, 0, 0, 0, 0, 0, 0, f32),
        "count-f32-swapped-misaligned": kernel_seed(0, 1, 7, 1, 3, 0, 0, 0, 0, f32),
        "count-f16": kernel_seed(1, 2, 0, 0, 1, 0, 0, 0, 0, half),
        "count-bf16-tiled": kernel_seed(2, 3, 0, 1, 0, 0, 0, 0, 3, half),
        "truncate-m10": kernel_seed(0, 0, 10, 0, 0, 0, 0, 0, 0, f32),
        "round-bf16": kernel_seed(0, 1, 7, 0, 5, 0, 0, 0, 1, f32),
        "round-m0": kernel_seed(0, 1, 0, 0, 0, 0, 0, 0, 0, f32),
        "fp16": kernel_seed(0, 3, 0, 1, 2, 0, 0, 0, 0, f32),
        "fake-quant-int8": kernel_seed(0, 4, 0, 0, 0, 35, 16, 0, 0, f32),
        "fake-quant-int4": kernel_seed(0, 4, 0, 1, 0, 10, 3, 1, 0, f32),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = Path(argv[1])
    (root / "parser").mkdir(parents=True, exist_ok=True)
    (root / "kernels").mkdir(parents=True, exist_ok=True)
    for variant in range(3):
        for big_endian in (False, True):
            write_gguf(root / "parser" / f"seed-{variant}-{'be' if big_endian else 'le'}.gguf", big_endian, variant)
    (root / "parser" / "seed.safetensors").write_bytes(safetensors_seed())
    for name, blob in kernel_seeds().items():
        (root / "kernels" / f"{name}.bin").write_bytes(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
