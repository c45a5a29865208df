"""Hand-written GGUF bytes for tests, field by field, in either byte order.

Nothing here imports pyscan: the layout follows the GGUF spec (see
/work/shared/REFERENCE.md) so that tests check pyscan against an independent
description of the format.  Every builder takes ``bo``, ``"<"`` (little
endian) or ``">"`` (big endian); a big-endian file stores every number,
the version included, byte-swapped.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LE, BE = "<", ">"

# Metadata value types (GGUF spec numbering).
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FMT = {
    UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i", FLOAT32: "f",
    BOOL: "B", UINT64: "Q", INT64: "q", FLOAT64: "d",
}  # fmt: skip

# ggml tensor types: id -> (name, block elements, bytes per block), copied from the reference notes.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}  # fmt: skip
REMOVED_TYPES = {
    4: "Q4_2",
    5: "Q4_3",
    31: "Q4_0_4_4",
    32: "Q4_0_4_8",
    33: "Q4_0_8_8",
    36: "IQ4_NL_4_4",
    37: "IQ4_NL_4_8",
    38: "IQ4_NL_8_8",
}
F32, F16, Q8_0, Q4_K, Q6_K, I8, I32, BF16, Q2_0 = 0, 1, 8, 12, 14, 24, 26, 30, 42


def pad(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def type_nbytes(type_id: int, shape: Sequence[int]) -> int:
    _, block, size = GGML_TYPES[type_id]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


# ---- fields -------------------------------------------------------------------------------------


def u32(v: int, bo: str = LE) -> bytes:
    return struct.pack(bo + "I", v)


def u64(v: int, bo: str = LE) -> bytes:
    return struct.pack(bo + "Q", v)


def string(s: str | bytes, bo: str = LE, length: int | None = None) -> bytes:
    """A GGUF string: u64 length, then the bytes (``length`` overrides the stored length)."""
    data = s.encode("utf-8") if isinstance(s, str) else s
    return u64(len(data) if length is None else length, bo) + data


def scalar(vtype: int, value: Any, bo: str = LE) -> bytes:
    return struct.pack(bo + SCALAR_FMT[vtype], value)


def value(vtype: int, v: Any, bo: str = LE) -> bytes:
    """An untagged value of a scalar or string type."""
    return string(v, bo) if vtype == STRING else scalar(vtype, v, bo)


def kv_raw(key: str | bytes, vtype: int, payload: bytes, bo: str = LE) -> bytes:
    """A key/value pair with an arbitrary type tag and payload."""
    return string(key, bo) + u32(vtype, bo) + payload


def kv(key: str | bytes, vtype: int, v: Any, bo: str = LE) -> bytes:
    return kv_raw(key, vtype, value(vtype, v, bo), bo)


def array_payload(elem_type: int, values: Sequence[Any], bo: str = LE, count: int | None = None) -> bytes:
    n = len(values) if count is None else count
    return u32(elem_type, bo) + u64(n, bo) + b"".join(value(elem_type, v, bo) for v in values)


def kv_array(key: str | bytes, elem_type: int, values: Sequence[Any], bo: str = LE, count: int | None = None) -> bytes:
    return kv_raw(key, ARRAY, array_payload(elem_type, values, bo, count), bo)


def tensor_info(
    name: str | bytes, shape: Sequence[int], type_id: int, offset: int, bo: str = LE, n_dims: int | None = None
) -> bytes:
    """One tensor info; ``shape`` innermost first, ``offset`` relative to the data start."""
    nd = len(shape) if n_dims is None else n_dims
    return string(name, bo) + u32(nd, bo) + b"".join(u64(d, bo) for d in shape) + u32(type_id, bo) + u64(offset, bo)


def header(n_tensors: int, n_kv: int, bo: str = LE, version: int = 3, magic: bytes = b"GGUF") -> bytes:
    return magic + u32(version, bo) + u64(n_tensors, bo) + u64(n_kv, bo)


# ---- whole files --------------------------------------------------------------------------------


@dataclass
class Tensor:
    """A tensor for ``build``: offset None means 'the next contiguous aligned offset'."""

    name: str | bytes
    shape: Sequence[int]
    type_id: int = F32
    offset: int | None = None
    data: bytes | None = None  # None: zero bytes of the type's size (unknown types: none)
    n_dims: int | None = None


@dataclass
class Layout:
    blob: bytes
    data_offset: int
    offsets: list[int] = field(default_factory=list)  # absolute


def build(
    kvs: Sequence[bytes] = (),
    tensors: Sequence[Tensor] = (),
    *,
    bo: str = LE,
    version: int = 3,
    alignment: int = 32,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    magic: bytes = b"GGUF",
    tail: bytes = b"",
) -> Layout:
    """A whole GGUF file: header, kvs (already encoded), tensor infos, padding, data.

    ``alignment`` is only used for the layout; add a ``general.alignment`` kv
    yourself to declare it.  Data is laid out contiguously in header order
    (each tensor's data padded to the alignment) unless a Tensor gives its own
    offset, in which case its data is placed there.
    """
    datas = []
    rel_offsets = []
    cursor = 0
    for t in tensors:
        data = t.data
        if data is None:
            data = bytes(type_nbytes(t.type_id, t.shape)) if t.type_id in GGML_TYPES else b""
        rel = cursor if t.offset is None else t.offset
        rel_offsets.append(rel)
        datas.append((rel, data))
        cursor = max(cursor, pad(rel + len(data), alignment))
    infos = b"".join(
        tensor_info(t.name, t.shape, t.type_id, off, bo, t.n_dims) for t, off in zip(tensors, rel_offsets, strict=True)
    )
    head = header(
        len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv, bo, version, magic
    )
    meta = head + b"".join(kvs) + infos
    data_offset = pad(len(meta), alignment)
    body = bytearray(max([0] + [rel + len(d) for rel, d in datas if d]))  # empty data may sit anywhere
    for rel, d in datas:
        if d:
            body[rel : rel + len(d)] = d
    blob = meta + bytes(data_offset - len(meta)) + bytes(body) + tail
    return Layout(blob, data_offset, [data_offset + r for r in rel_offsets])


def build_bytes(*args: Any, **kwargs: Any) -> bytes:
    return build(*args, **kwargs).blob
