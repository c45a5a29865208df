"""Parse and validate a GGUF file's header: metadata, tensor infos, data layout.

Nothing read from the file is trusted.  Counts, lengths, offsets and sizes are
Python integers (no wrap-around) and each is checked against the file size
before it is used.  The checks are ggml's loader's, plus: tensor data must lie
inside the file.  Any failure raises PyscanError naming the file and the fault.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # numpy is imported only for to_numpy(): it costs ~100 ms at start-up
    import numpy as np

from pyscan.errors import PyscanError
from pyscan.native import Mapping, ffi, lib, map_file
from pyscan.parser.cursor import Cursor
from pyscan.parser.ggml_types import GGML_TYPES, GGMLType, type_label
from pyscan.parser.metadata import (
    SCALAR_CODES,
    SCALAR_SIZES,
    MetadataArray,
    MetadataEntry,
    MetadataValue,
    ValueType,
)
from pyscan.text import quote

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_NAME_BYTES = 63  # ggml's GGML_MAX_NAME is 64 including the NUL
MAX_ARRAY_ELEMENTS = 1 << 30
INT64_MAX = (1 << 63) - 1
HEADER_BYTES = 24  # magic, version, n_tensors, n_kv
MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, a one-byte key, value type, a one-byte value
MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8  # name length, name, n_dims, type, offset

# numpy dtypes of the tensor types that have a plain element layout.
PLAIN_DTYPES: dict[str, str] = {
    "U8": "u1", "U16": "u2", "U32": "u4", "U64": "u8", "BOOL": "?",  # safetensors only
    "F32": "f4", "F16": "f2", "F64": "f8", "I8": "i1", "I16": "i2", "I32": "i4", "I64": "i8",
}  # fmt: skip


class TensorInfo(NamedTuple):
    """One tensor as the header describes it.

    ``shape`` lists dimensions innermost first (ne0 = row length), as GGUF
    stores them; ``offset`` is absolute.  ``nbytes`` and ``ggml_type`` are None
    for a type id pyscan does not know: such a tensor is listed, never read.
    """

    name: str
    type_id: int
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    offset: int
    nbytes: int | None
    ggml_type: GGMLType | None


class GGUFFile:
    """A parsed GGUF file over a memory mapping.  Use ``pyscan.open(path)``."""

    __slots__ = ("path", "size", "version", "byte_order", "alignment", "data_offset", "metadata", "tensors",
                 "_mapping", "format")  # fmt: skip

    def __init__(
        self,
        path: str,
        size: int,
        version: int,
        byte_order: str,  # "little" or "big"
        alignment: int,
        data_offset: int,
        metadata: dict[str, MetadataEntry],
        tensors: list[TensorInfo],
        mapping: Mapping | None,
        format: str = "gguf",  # or "safetensors" (see pyscan.parser.safetensors): same interface
    ) -> None:
        self.path = path
        self.size = size
        self.version = version
        self.byte_order = byte_order
        self.alignment = alignment
        self.data_offset = data_offset
        self.metadata = metadata
        self.tensors = tensors
        self._mapping = mapping
        self.format = format

    def __repr__(self) -> str:
        state = "" if self._mapping is not None else ", closed"
        return (
            f"GGUFFile({self.path!r}, {self.format} v{self.version}, {self.byte_order}-endian, "
            f"{len(self.tensors)} tensors, {len(self.metadata)} metadata keys{state})"
        )

    @property
    def n_kv(self) -> int:
        return len(self.metadata)

    @property
    def swap(self) -> bool:
        """True when the file's byte order differs from this machine's."""
        return self.byte_order != sys.byteorder

    @property
    def mapping(self) -> Mapping:
        if self._mapping is None:
            raise PyscanError(self.path, "the file has been closed", "usage")
        return self._mapping

    def value(self, key: str) -> MetadataValue | None:
        entry = self.metadata.get(key)
        return None if entry is None else entry.value

    def tensor(self, name: str) -> TensorInfo:
        for info in self.tensors:
            if info.name == name:
                return info
        raise KeyError(name)

    def to_numpy(self, tensor: TensorInfo | str) -> np.ndarray[Any, Any]:
        """A zero-copy, read-only view of a plain-typed tensor, numpy shape order.

        BF16 comes back as ml_dtypes.bfloat16 (a little-endian file only; a
        big-endian BF16 tensor comes back as its raw big-endian uint16 words).
        """
        import numpy as np

        info = self.tensor(tensor) if isinstance(tensor, str) else tensor
        order = "<" if self.byte_order == "little" else ">"
        if info.type_name in PLAIN_DTYPES:
            dtype: Any = np.dtype(order + PLAIN_DTYPES[info.type_name])
        elif info.type_name == "BF16" and not self.swap:
            import ml_dtypes

            dtype = np.dtype(ml_dtypes.bfloat16)
        elif info.type_name == "BF16":
            dtype = np.dtype(order + "u2")
        else:
            raise PyscanError(
                self.path, f"tensor {quote(info.name)} of type {info.type_name} has no plain element layout", "usage"
            )
        array = np.frombuffer(self.mapping.buffer, dtype=dtype, count=info.n_elements, offset=info.offset)
        try:
            return array.reshape(tuple(reversed(info.shape)) or ())
        except ValueError:  # e.g. [2^62, 0]: no elements, but a shape numpy cannot index
            raise PyscanError(
                self.path, f"tensor {quote(info.name)} has a shape numpy cannot represent: {list(info.shape)}", "usage"
            ) from None

    def check(self) -> None:
        """Raise the one-line PyscanError if the file shrank while it was read (what was read is not data)."""
        if self._mapping is not None:
            self._mapping.check()

    def close(self) -> None:
        """Drop this file's hold on the mapping; views made from it stay valid."""
        self._mapping = None

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever the block computed or failed with, zeros read from a shrunk file explain it first.
        try:
            self.check()
        finally:
            self.close()


def open_model(path: str | os.PathLike[str], writable: bool = False) -> GGUFFile:
    """Map and parse a GGUF or safetensors file, told apart by their first bytes."""
    mapping = map_file(path, writable)
    # safetensors starts with a little-endian u64 header length, then the JSON header's "{".
    if bytes(mapping.buffer[:4]) != MAGIC and mapping.size > 8 and mapping.buffer[8] == ord("{"):
        from pyscan.parser.safetensors import parse_safetensors

        return _checked(mapping, parse_safetensors)
    return _checked(mapping, parse)


def open_gguf(path: str | os.PathLike[str], writable: bool = False) -> GGUFFile:
    """Map and parse a GGUF file (writable: a shared, writable mapping); PyscanError if it is not valid."""
    return _checked(map_file(path, writable), parse)


def _checked(mapping: Mapping, parse_mapping: Callable[[Mapping], GGUFFile]) -> GGUFFile:
    """Parse, then make sure the header was read from the file and not from the zero pages of a shrunk one."""
    try:
        model = parse_mapping(mapping)
    except PyscanError:
        mapping.check()  # a header that reads as garbage because the file shrank: say that instead
        raise
    mapping.check()
    return model


def parse(mapping: Mapping) -> GGUFFile:
    cur = Cursor(mapping.buffer, mapping.path)
    if mapping.size < 4:
        raise cur.fail(f"not a GGUF file: only {mapping.size} bytes")
    magic = bytes(mapping.buffer[:4])
    if magic != MAGIC:
        raise cur.fail(f"not a GGUF file: starts with {magic!r}, not b'GGUF'")
    cur.pos = 4
    version, byte_order = _read_version(cur)
    n_tensors = cur.u64("the tensor count")
    n_kv = cur.u64("the metadata key count")
    if n_kv * MIN_KV_BYTES + n_tensors * MIN_TENSOR_INFO_BYTES > mapping.size - HEADER_BYTES:
        raise cur.fail(
            f"header claims {n_tensors} tensors and {n_kv} metadata keys, more than a {mapping.size}-byte file can hold"
        )

    metadata = _read_metadata(cur, n_kv)
    alignment = _alignment(cur, metadata)
    tensors_raw = [_read_tensor_info(cur, i) for i in range(n_tensors)]
    data_offset = -(-cur.pos // alignment) * alignment
    tensors = _place_tensors(cur, tensors_raw, data_offset, alignment)
    return GGUFFile(mapping.path, mapping.size, version, byte_order, alignment, data_offset, metadata, tensors, mapping)


def _read_version(cur: Cursor) -> tuple[int, str]:
    raw = cur.u32("the version")
    swapped = int.from_bytes(raw.to_bytes(4, "little"), "big")
    if raw in SUPPORTED_VERSIONS:
        cur.set_byte_order("<")
        return raw, "little"
    if swapped in SUPPORTED_VERSIONS:
        cur.set_byte_order(">")
        return swapped, "big"
    if raw == 1 or swapped == 1:
        raise cur.fail("GGUF version 1 is not supported (32-bit counts; ggml dropped it): re-convert the model")
    raise cur.fail(f"unsupported GGUF version {raw} (byte-swapped: {swapped}; supported: 2 and 3)")


def _read_metadata(cur: Cursor, n_kv: int) -> dict[str, MetadataEntry]:
    metadata: dict[str, MetadataEntry] = {}
    scalar_structs = {t: struct.Struct(cur.byte_order + c) for t, c in SCALAR_CODES.items()}
    for index in range(n_kv):
        key = cur.text(f"metadata key #{index}")
        if not key:
            raise cur.fail(f"metadata key #{index} is empty")
        if key in metadata:
            raise cur.fail(f"metadata key {quote(key)} appears twice")
        value_type = _value_type(cur, cur.u32(f"the type of {quote(key)}"), key)
        value: MetadataValue
        if value_type == ValueType.ARRAY:
            value = _read_array(cur, key)
        elif value_type == ValueType.STRING:
            value = cur.raw_string(f"the value of {quote(key)}").decode("utf-8", "replace")
        else:
            value = _read_scalar(cur, scalar_structs[value_type], value_type, key)
        metadata[key] = MetadataEntry(key, value_type, value)
    return metadata


def _value_type(cur: Cursor, raw: int, key: str) -> ValueType:
    try:
        return ValueType(raw)
    except ValueError:
        raise cur.fail(f"metadata key {quote(key)} has unknown value type {raw}") from None


def _read_scalar(cur: Cursor, fmt: struct.Struct, value_type: ValueType, key: str) -> int | float | bool:
    value = cur.unpack(fmt, f"the value of {quote(key)}")
    if value_type == ValueType.BOOL:
        if value not in (0, 1):
            raise cur.fail(f"metadata key {quote(key)} is a bool stored as {value}, not 0 or 1")
        return bool(value)
    assert isinstance(value, (int, float))
    return value


def _read_array(cur: Cursor, key: str) -> MetadataArray:
    element_type = _value_type(cur, cur.u32(f"the element type of {quote(key)}"), key)
    if element_type == ValueType.ARRAY:
        raise cur.fail(f"metadata key {quote(key)} is a nested array (ggml does not support them)")
    count = cur.u64(f"the length of array {quote(key)}")
    if count > MAX_ARRAY_ELEMENTS:
        raise cur.fail(f"array {quote(key)} claims {count} elements (limit {MAX_ARRAY_ELEMENTS})")
    start = cur.pos
    if element_type == ValueType.STRING:
        if count * 8 > cur.size - start:
            raise cur.fail(f"array {quote(key)} claims {count} strings, more than the file can hold")
        end = ffi.new("uint64_t *")
        status = lib.pyscan_skip_strings(
            ffi.from_buffer(cur.buf), cur.size, start, count, int(cur.byte_order == ">"), 1 << 30, end
        )
        if status == lib.PYSCAN_SKIP_TRUNCATED:
            raise cur.fail(f"truncated: the file ends inside string array {quote(key)}")
        if status == lib.PYSCAN_SKIP_TOO_LONG:
            raise cur.fail(f"string array {quote(key)} holds a string over {1 << 30} bytes")
        cur.pos = int(end[0])
    else:
        nbytes = count * SCALAR_SIZES[element_type]
        cur.need(nbytes, f"array {quote(key)} ({count} elements)")
        cur.pos += nbytes
        if element_type == ValueType.BOOL and bytes(cur.buf[start : start + count]).translate(None, b"\x00\x01"):
            raise cur.fail(f"bool array {quote(key)} holds a byte other than 0 or 1")
    return MetadataArray(element_type, count, start, cur.pos - start, cur.buf, cur.byte_order)


def _alignment(cur: Cursor, metadata: dict[str, MetadataEntry]) -> int:
    entry = metadata.get("general.alignment")
    if entry is None:
        return DEFAULT_ALIGNMENT
    if entry.type != ValueType.UINT32:
        raise cur.fail(f"general.alignment must be a uint32, not {entry.type.name.lower()}")
    value = entry.value
    assert isinstance(value, int)
    if value == 0 or value & (value - 1):
        raise cur.fail(f"general.alignment {value} is not a power of two")
    return value


class _RawTensor(NamedTuple):
    name: str
    shape: tuple[int, ...]
    n_elements: int
    type_id: int
    relative_offset: int


def _read_tensor_info(cur: Cursor, index: int) -> _RawTensor:
    name = cur.text(f"the name of tensor #{index}")
    label = f"tensor {quote(name)}"
    if len(name.encode()) > MAX_NAME_BYTES:
        raise cur.fail(f"{label}: name is {len(name.encode())} bytes (ggml allows {MAX_NAME_BYTES})")
    n_dims = cur.u32(f"the dimension count of {label}")
    if n_dims > MAX_DIMS:
        raise cur.fail(f"{label} has {n_dims} dimensions (at most {MAX_DIMS})")
    shape = tuple(cur.u64(f"the dimensions of {label}") for _ in range(n_dims))
    n_elements = 1
    for dim in shape:
        if dim > INT64_MAX:
            raise cur.fail(f"{label} has a negative dimension ({dim - (1 << 64)})")
        n_elements *= dim
    if n_elements > INT64_MAX:
        raise cur.fail(f"{label}: dimensions {list(shape)} overflow a 64-bit element count")
    type_id = cur.u32(f"the type of {label}")
    offset = cur.u64(f"the data offset of {label}")
    return _RawTensor(name, shape, n_elements, type_id, offset)


def _place_tensors(cur: Cursor, raw: list[_RawTensor], data_offset: int, alignment: int) -> list[TensorInfo]:
    """Check the data layout: aligned, contiguous, in order, inside the file; give sizes."""
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    expected = 0  # ggml requires each offset to be the padded sum of the sizes before it
    after_unknown = False  # an unknown type's size is unknown: the next tensor may start later
    for t in raw:
        label = f"tensor {quote(t.name)}"
        if t.name in seen:
            raise cur.fail(f"{label} appears twice")
        seen.add(t.name)
        ggml_type = GGML_TYPES.get(t.type_id)
        if t.relative_offset % alignment:
            raise cur.fail(f"{label}: data offset {t.relative_offset} is not a multiple of the alignment {alignment}")
        nbytes: int | None = None
        if ggml_type is not None:
            row_length = t.shape[0] if t.shape else 1  # ggml: absent dimensions are 1
            if row_length % ggml_type.block_elements:
                raise cur.fail(
                    f"{label}: row length {row_length} is not a multiple of "
                    f"{ggml_type.name}'s block size {ggml_type.block_elements}"
                )
            nbytes = ggml_type.nbytes(t.n_elements)
        if t.relative_offset < expected:
            raise cur.fail(
                f"{label}: data offset {t.relative_offset} overlaps the tensor before it (expected {expected})"
            )
        if t.relative_offset != expected and not after_unknown:
            raise cur.fail(
                f"{label}: data offset {t.relative_offset} should be {expected} "
                "(tensor data must be contiguous and in header order)"
            )
        start = data_offset + t.relative_offset
        if start > cur.size or (nbytes is not None and nbytes > cur.size - start):
            raise cur.fail(
                f"{label}: data [{start}, {start + (nbytes or 0)}) lies past the end of the {cur.size}-byte file"
            )
        expected = t.relative_offset + (-(-nbytes // alignment) * alignment if nbytes is not None else 0)
        after_unknown = nbytes is None
        tensors.append(
            TensorInfo(t.name, t.type_id, type_label(t.type_id), t.shape, t.n_elements, start, nbytes, ggml_type)
        )
    return tensors
