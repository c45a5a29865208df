"""The GGUF reader: parse and validate a GGUF file's header (metadata, tensor infos, data layout).

Nothing read from the file is trusted.  Counts, lengths, offsets and sizes are
Python integers (no wrap-around) and each is checked against the file size
before it is used.  The checks are ggml's loader's, plus: tensor data must lie
inside the file.  Any failure raises PyscanError naming the file and the fault.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pyscan.native import Mapping, ffi, lib
from pyscan.parser.cursor import Cursor
from pyscan.parser.ggml_types import GGML_TYPES, type_label
from pyscan.parser.metadata import (
    SCALAR_CODES,
    SCALAR_SIZES,
    MetadataArray,
    MetadataEntry,
    MetadataValue,
    ValueType,
)
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.text import quote

MAGIC = b"GGUF"
WALK_STEP = 1 << 16  # tensor infos per C call: 5 MiB of results, whatever the header claims
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_NAME_BYTES = 63  # ggml's GGML_MAX_NAME is 64 including the NUL
MAX_ARRAY_ELEMENTS = 1 << 30
INT64_MAX = (1 << 63) - 1
HEADER_BYTES = 24  # magic, version, n_tensors, n_kv
MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, a one-byte key, value type, a one-byte value
MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8  # name length, name, n_dims, type, offset

def parse_gguf(mapping: Mapping, header_only: bool = False) -> ModelFile:
    """Parse a GGUF file; header_only accepts one whose tensor data is missing or cut (a partial download)."""
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
    tensors = _plainly_valid_tensors(cur, mapping, n_tensors, alignment)
    if tensors is None:  # something is wrong somewhere: the careful readers say what
        tensors_raw = _read_tensor_infos(cur, mapping, n_tensors)
        tensors = _place_tensors(cur, tensors_raw, -(-cur.pos // alignment) * alignment, alignment)
    data_offset = -(-cur.pos // alignment) * alignment
    model = ModelFile(
        mapping.path, mapping.size, version, byte_order, alignment, data_offset, metadata, tensors, mapping
    )
    if model.missing and not header_only:
        raise cur.fail(_truncated(model))
    return model


def _truncated(model: ModelFile) -> str:
    """What a file whose header is whole but whose data is cut is: most likely an incomplete download."""
    from pyscan.formatting import human_size, plural  # only this message needs them: off the start-up path

    missing = model.missing
    complete = len(model.tensors) - len(missing)
    first = next(t for t in model.tensors if t.name in missing)
    end = first.offset + (first.nbytes or 0)
    return (
        f"truncated: the header is complete (GGUF v{model.version}, {plural(len(model.tensors), 'tensor')}, "
        f"{plural(model.n_kv, 'metadata key')}), but the file ends at {human_size(model.size)} of the "
        f"{human_size(model.described_size)} its header describes, and {complete:,} of "
        f"{plural(len(model.tensors), 'tensor')} {'is' if len(model.tensors) == 1 else 'are'} complete "
        f"(the first past the end: tensor {quote(first.name)}, data [{first.offset}, {end})): "
        "an incomplete download? (pyscan FILE --header-only shows the header)"
    )


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


_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__


class _RawTensor(NamedTuple):
    name: str
    shape: tuple[int, ...]
    n_elements: int
    type_id: int
    relative_offset: int


# ggml's block sizes as arrays indexed by type id, for the layout check in C (0: unknown type).
_BLOCK_ELEMENTS = [0] * (max(GGML_TYPES) + 1)
_BLOCK_BYTES = [0] * (max(GGML_TYPES) + 1)
for _type in GGML_TYPES.values():
    _BLOCK_ELEMENTS[_type.id], _BLOCK_BYTES[_type.id] = _type.block_elements, _type.block_bytes


def _plainly_valid_tensors(cur: Cursor, mapping: Mapping, count: int, alignment: int) -> list[TensorInfo] | None:
    """Every tensor info, walked and placed in C, when all of them are plainly valid; else None.

    The common case, and the fast one: 200,000 tensors in ~0.25 s, where the careful readers
    (_read_tensor_infos, _place_tensors), which say what is wrong, take twice that.  Leaves
    cur.pos past the tensor infos; on None, where it was.
    """
    base = ffi.NULL if mapping.address == 0 else ffi.cast("void *", mapping.address)
    swap, end = cur.byte_order == ">", ffi.new("uint64_t *")
    # First only where the infos end (no output), for the data offset the placement needs.
    if lib.pyscan_walk_tensor_infos(base, mapping.size, cur.pos, count, swap, MAX_NAME_BYTES, ffi.NULL, end) >= 0:
        return None
    data_offset = -(-int(end[0]) // alignment) * alignment
    step = max(1, min(count, WALK_STEP))  # a bounded buffer: the count comes from the file
    width = lib.PYSCAN_INFO_FIELDS
    fields, sizes = ffi.new("uint64_t[]", step * width), ffi.new("uint64_t[]", step)
    expected, after_unknown = ffi.new("uint64_t *"), ffi.new("int *")
    blocks = ffi.new("uint64_t[]", _BLOCK_ELEMENTS), ffi.new("uint64_t[]", _BLOCK_BYTES)
    tensors: list[TensorInfo] = []
    labels: dict[int, str] = {}
    buf, position = mapping.buffer, cur.pos
    while len(tensors) < count:
        n = min(count - len(tensors), step)
        if lib.pyscan_walk_tensor_infos(base, mapping.size, position, n, swap, MAX_NAME_BYTES, fields, end) >= 0:
            return None  # the bytes changed since the first walk (a file still being written)
        position = int(end[0])
        if lib.pyscan_place_tensors(
            fields, n, data_offset, alignment, *blocks, len(_BLOCK_ELEMENTS), expected, after_unknown, sizes
        ) >= 0:
            return None
        values = memoryview(ffi.buffer(fields, 8 * width * n)).cast("Q").tolist()
        nbytes_list = memoryview(ffi.buffer(sizes, 8 * n)).cast("Q").tolist()
        for k, nbytes in zip(range(0, n * width, width), nbytes_list, strict=True):
            name_at, type_id = values[k], values[k + 7]
            try:
                name = str(buf[name_at : name_at + values[k + 1]], "utf-8")
            except UnicodeDecodeError:
                return None
            ggml_type = GGML_TYPES.get(type_id)
            label = labels.get(type_id) or labels.setdefault(type_id, type_label(type_id))
            shape = tuple(values[k + 3 : k + 3 + values[k + 2]])
            size = None if ggml_type is None else nbytes
            # tuple.__new__, not TensorInfo(...): a NamedTuple's own __new__ is a Python call.
            info = (name, type_id, label, shape, values[k + 9], values[k + 8], size, ggml_type)
            tensors.append(_new_tuple(TensorInfo, info))
    if len({t.name for t in tensors}) != len(tensors):
        return None  # a name appears twice: the careful reader says which
    cur.pos = position
    return tensors


def _read_tensor_infos(cur: Cursor, mapping: Mapping, count: int) -> list[_RawTensor]:
    """Every tensor info: the plainly valid ones walked in C (200,000 of them in ~0.1 s), the rest here.

    Where the walk stops (or a name is not UTF-8), the careful reader reads that one tensor and
    either says what is wrong or hands back to the walk.
    """
    raw: list[_RawTensor] = []
    # A bounded buffer, walked again per WALK_STEP tensors: the count comes from the file, unchecked so far.
    fields = ffi.new("uint64_t[]", max(1, min(count, WALK_STEP)) * lib.PYSCAN_INFO_FIELDS)
    end = ffi.new("uint64_t *")
    width = lib.PYSCAN_INFO_FIELDS
    buf = mapping.buffer
    while len(raw) < count:
        base = ffi.NULL if mapping.address == 0 else ffi.cast("void *", mapping.address)
        left = min(count - len(raw), WALK_STEP)
        stopped = lib.pyscan_walk_tensor_infos(
            base, mapping.size, cur.pos, left, cur.byte_order == ">", MAX_NAME_BYTES, fields, end
        )
        walked = left if stopped < 0 else stopped
        careful = stopped >= 0  # the walk stopped at a tensor that is not plainly valid
        values = memoryview(ffi.buffer(fields, 8 * width * walked)).cast("Q").tolist() if walked else []
        for k in range(0, len(values), width):
            name_at, name_length, n_dims, *dims = values[k : k + 8]
            try:
                name = bytes(buf[name_at : name_at + name_length]).decode("utf-8")
            except UnicodeDecodeError:
                cur.pos = name_at - 8
                careful = True  # the careful reader says which byte
                break
            # tuple.__new__, not _RawTensor(...): a NamedTuple's own __new__ is a Python call (~0.4 s per 200,000).
            fields_k = (name, tuple(dims[:n_dims]), values[k + 9], values[k + 7], values[k + 8])
            raw.append(_new_tuple(_RawTensor, fields_k))
        else:
            cur.pos = int(end[0])
        if careful:
            raw.append(_read_tensor_info(cur, len(raw)))
    return raw


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

    def label(name: str) -> str:  # only for messages: quoting every name up front costs
        return f"tensor {quote(name)}"

    for name, shape, n_elements, type_id, relative_offset in raw:
        if name in seen:
            raise cur.fail(f"{label(name)} appears twice")
        seen.add(name)
        ggml_type = GGML_TYPES.get(type_id)
        if relative_offset % alignment:
            raise cur.fail(
                f"{label(name)}: data offset {relative_offset} is not a multiple of the alignment {alignment}"
            )
        nbytes: int | None = None
        if ggml_type is not None:
            row_length = shape[0] if shape else 1  # ggml: absent dimensions are 1
            if row_length % ggml_type.block_elements:
                raise cur.fail(
                    f"{label(name)}: row length {row_length} is not a multiple of "
                    f"{ggml_type.name}'s block size {ggml_type.block_elements}"
                )
            nbytes = ggml_type.nbytes(n_elements)
        if relative_offset < expected:
            raise cur.fail(
                f"{label(name)}: data offset {relative_offset} overlaps the tensor before it (expected {expected})"
            )
        if relative_offset != expected and not after_unknown:
            raise cur.fail(
                f"{label(name)}: data offset {relative_offset} should be {expected} "
                "(tensor data must be contiguous and in header order)"
            )
        start = data_offset + relative_offset  # past the end of the file: see _check_data_present
        expected = relative_offset + (-(-nbytes // alignment) * alignment if nbytes is not None else 0)
        after_unknown = nbytes is None
        tensors.append(
            _new_tuple(TensorInfo, (name, type_id, type_label(type_id), shape, n_elements, start, nbytes, ggml_type))
        )
    return tensors
