"""A tensor's values as float64 rows, read a range of rows at a time from its file's mapping.

Plain element types decode from their words (in the file's byte order); quantized types
dequantize with gguf.quants.dequantize, the reference numpy implementation of ggml's formats.
Each range's pages are released once decoded, as the scanner does, so memory stays bounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyscan.parser.model import ModelFile, TensorInfo

Array = np.ndarray[Any, Any]

PLAIN_FLOATS = ("F32", "F16", "BF16", "F64")
INTEGERS = ("I8", "I16", "I32", "I64")


def row_length(info: TensorInfo) -> int:
    """Elements per row: ne0, innermost (1 for a scalar)."""
    return info.shape[0] if info.shape else 1


def n_rows(info: TensorInfo) -> int:
    length = row_length(info)
    return info.n_elements // length if length else 0


def readable(info: TensorInfo) -> bool:
    """Whether rows() can produce this tensor's values."""
    if info.nbytes is None:
        return False
    if info.type_name in PLAIN_FLOATS or info.type_name in INTEGERS:
        return True
    return info.ggml_type is not None and _quant_type(info) is not None and info.ggml_type.block_elements > 1


def is_quantized(info: TensorInfo) -> bool:
    return info.type_name not in PLAIN_FLOATS and info.type_name not in INTEGERS


def _quant_type(info: TensorInfo) -> Any:
    import gguf

    try:
        return None if info.type_id is None else gguf.GGMLQuantizationType(info.type_id)
    except ValueError:
        return None


def rows(model: ModelFile, info: TensorInfo, first: int, count: int) -> Array:
    """Rows [first, first + count) as a (count, row_length) float64 array; the range's pages released after."""
    length = row_length(info)
    if info.type_name in PLAIN_FLOATS or info.type_name in INTEGERS:
        words = model.words(info)[first * length : (first + count) * length]
        out = decode(info.type_name, words).reshape(count, length)
        width = words.dtype.itemsize
        _release(model, info.offset + first * length * width, count * length * width)
        return out
    import gguf

    block = info.ggml_type
    assert block is not None and info.nbytes is not None
    row_bytes = length // block.block_elements * block.block_bytes
    start = info.offset + first * row_bytes
    raw = np.frombuffer(model.mapping.buffer, dtype=np.uint8, count=count * row_bytes, offset=start)
    # an inf or NaN scale gives NaN/inf values (counted as skipped), not numpy warnings
    with np.errstate(over="ignore", invalid="ignore"):
        values = gguf.quants.dequantize(raw.reshape(count, row_bytes), _quant_type(info))
    _release(model, start, count * row_bytes)
    return np.asarray(values, dtype=np.float64).reshape(count, length)


def decode(type_name: str, words: Array) -> Array:
    """Words in the file's byte order -> float64 (exact for every float type)."""
    native = words.astype(words.dtype.newbyteorder("="), copy=False)
    with np.errstate(invalid="ignore"):  # signaling NaNs stay NaNs
        if type_name == "F32":
            return native.view(np.float32).astype(np.float64)
        if type_name == "F16":
            return native.view(np.float16).astype(np.float64)
        if type_name == "BF16":  # BF16 is the top half of an F32
            return (native.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        if type_name == "F64":
            return native.view(np.float64).copy()
        return native.view(f"i{native.dtype.itemsize}").astype(np.float64)


def _release(model: ModelFile, offset: int, length: int) -> None:
    if length > 0:
        model.mapping.release(offset, length)
