"""GGUF files for the tests, written with gguf.GGUFWriter (never with pyscan)."""

from __future__ import annotations

import os
from typing import Any

import gguf
import ml_dtypes
import numpy as np
from oracles import F32_SPECIALS, f32_test_words

ODD_LENGTHS = (1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 1023, 4095, 4096, 4097)


def write(
    path: str | os.PathLike[str],
    tensors: list[tuple[str, np.ndarray[Any, Any], Any]],
    big_endian: bool = False,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write (name, array, raw ggml type or None) tensors and string/int metadata."""
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(os.fspath(path), "llama", endianess=endian)
    for key, value in (metadata or {}).items():
        writer.add_key_value(key, value, gguf.GGUFValueType.get_type(value))
    for name, array, raw_type in tensors:
        writer.add_tensor(name, array, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def mixed_tensors(seed: int = 0) -> list[tuple[str, np.ndarray[Any, Any], Any]]:
    """F32 (random, special values, odd lengths 1..4097), F16, BF16, F64, I32 and Q8_0 tensors."""
    rng = np.random.default_rng(seed)
    tensors: list[tuple[str, np.ndarray[Any, Any], Any]] = []
    for n in ODD_LENGTHS:
        tensors.append((f"blk.{n}.random.weight", f32_test_words(n, seed=n).view(np.float32), None))
    tensors.append(("specials.weight", F32_SPECIALS.view(np.float32), None))
    tensors.append(("matrix.weight", f32_test_words(33 * 5, seed=9).view(np.float32).reshape(5, 33), None))
    bf16_norm = rng.normal(1, 0.1, 777).astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    tensors.append(("blk.0.attn_norm.weight", bf16_norm, None))
    halves = rng.integers(0, 1 << 16, size=3001, dtype=np.uint32).astype(np.uint16)
    tensors.append(("half.weight", halves.view(np.float16), None))
    tensors.append(("brain.weight", halves[::-1].copy(), gguf.GGMLQuantizationType.BF16))
    tensors.append(("double.weight", rng.normal(size=(3, 11)), None))
    tensors.append(("ints.weight", rng.integers(-1000, 1000, size=257, dtype=np.int32), None))
    q8 = rng.integers(0, 256, size=(4, 2 * 34), dtype=np.uint8)  # 4 rows of 64 elements
    tensors.append(("quant.weight", q8, gguf.GGMLQuantizationType.Q8_0))
    return tensors


def write_mixed(path: str | os.PathLike[str], big_endian: bool = False) -> None:
    write(path, mixed_tensors(), big_endian, {"general.name": "mixed test model"})


def reader_words(reader: gguf.GGUFReader, tensor: Any) -> np.ndarray[Any, Any]:
    """A tensor's elements as native-order unsigned words, read by gguf-py."""
    raw = np.asarray(tensor.data).view(np.uint8).reshape(-1)
    width = 4 if tensor.tensor_type.name == "F32" else 2
    order = ">" if reader.endianess == gguf.GGUFEndian.BIG else "<"
    return np.frombuffer(raw.tobytes(), dtype=f"{order}u{width}").astype(np.uint32 if width == 4 else np.uint16)


def norms_between_quants(path: str | os.PathLike[str]) -> None:
    """F32 norms and a 1.2 MB F32 tensor between large quantized tensors, as in a Q4_K_M or MoE file."""
    q8 = np.zeros((480, 34 * 32), dtype=np.uint8)  # 522,240 bytes of Q8_0
    tensors = []
    for i in range(12):
        tensors.append((f"blk.{i}.attn_norm.weight", np.ones(2048, dtype=np.float32), None))  # 8 KiB
        tensors.append((f"blk.{i}.attn_q.weight", q8, gguf.GGMLQuantizationType.Q8_0))
    tensors.append(("output_norm.weight", np.ones(300_000, dtype=np.float32), None))  # large: chunked
    tensors.append(("output.weight", q8, gguf.GGMLQuantizationType.Q8_0))
    write(path, tensors)
