"""Parse and validate a safetensors file's header into the same ModelFile interface as GGUF.

Layout: a little-endian u64 header length N, N bytes of UTF-8 JSON, then the
data section.  The JSON object maps each tensor name to
``{"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}`` (offsets
relative to the data section, which starts at 8 + N), plus an optional
``"__metadata__": {str: str}``.

Nothing read from the file is trusted.  The checks are the safetensors
library's (header at most 100 MB, known dtypes, sizes that match shape x dtype,
data ranges that tile the data section exactly), plus: no duplicate keys, no
fields besides the three, strings that are valid Unicode, at most 64
dimensions each below 2**63.  Any failure raises PyscanError naming the file
and the fault.

Each TensorInfo's ``shape`` is the safetensors shape *reversed*: innermost
dimension first, as GGUF stores it (ne0 = row length), so that row-wise code
and ``ModelFile.to_numpy`` treat both formats alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

from pyscan.errors import PyscanError
from pyscan.native import Mapping
from pyscan.parser.ggml_types import TYPES_BY_NAME, GGMLType
from pyscan.parser.metadata import MetadataEntry, ValueType
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.text import quote

LENGTH_BYTES = 8  # the u64 header length
MAX_HEADER_BYTES = 100_000_000  # the safetensors library refuses longer headers
MAX_DIMS = 64  # numpy 2's NPY_MAXDIMS: a tensor with more could not be viewed
INT64_MAX = (1 << 63) - 1
MAX_INT_DIGITS = 20  # u64 max has 20 digits; longer literals are refused before int() sees them
METADATA_KEY = "__metadata__"
TENSOR_FIELDS = ("dtype", "shape", "data_offsets")

# Bits per element of every dtype the safetensors library (0.8) knows.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip

# dtypes with the same name and element layout in ggml: these get its type id.
GGML_TWINS = ("F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64")

Fail = Callable[[str], NoReturn]  # raises PyscanError naming the file


def parse_safetensors(mapping: Mapping, header_only: bool = False) -> ModelFile:
    """Parse a safetensors file; header_only accepts one whose data is cut (a partial download)."""
    path = mapping.path

    def fail(reason: str) -> NoReturn:
        raise PyscanError(path, reason)

    size = mapping.size
    if size < LENGTH_BYTES:
        fail(f"not a safetensors file: only {size} bytes")
    n = int.from_bytes(mapping.buffer[:LENGTH_BYTES], "little")
    if n == 0:
        fail("safetensors header length is 0")
    if n > MAX_HEADER_BYTES:
        fail(f"safetensors header length {n} is over the limit of {MAX_HEADER_BYTES} bytes")
    data_offset = LENGTH_BYTES + n
    if data_offset > size:
        fail(f"truncated: the safetensors header claims {n} bytes, but the {size}-byte file ends first")

    header = _decode_header(bytes(mapping.buffer[LENGTH_BYTES:data_offset]), fail)
    metadata = _metadata(header.pop(METADATA_KEY, None), fail)
    data_size = size - data_offset
    # A cut download's tensors may lie past the end; ModelFile.missing names them.
    room = INT64_MAX if header_only else data_size
    entries = [_tensor(name, entry, data_offset, data_size, room, fail) for name, entry in header.items()]
    # The library sorts by data offsets; sorting by (begin, end) also orders empty tensors that share a begin.
    entries.sort(key=lambda e: (e[1], e[2]))
    expected = 0
    for info, begin, end in entries:
        label = f"tensor {quote(info.name)}"
        if begin < expected:
            fail(f"{label}: data_offsets [{begin}, {end}] overlap the tensor before it (which ends at {expected})")
        if begin > expected:
            fail(f"{label}: data_offsets [{begin}, {end}] leave a gap [{expected}, {begin}) in the data section")
        expected = end
    if expected < data_size:
        fail(f"the tensors cover {expected} bytes of the {data_size}-byte data section (the rest belongs to none)")
    return ModelFile(
        path=path,
        size=size,
        version=None,  # safetensors has no version
        byte_order="little",  # the format is little-endian only
        alignment=1,  # the format promises none
        data_offset=data_offset,
        metadata=metadata,
        tensors=[info for info, _, _ in entries],
        mapping=mapping,
        format="safetensors",
    )


def _decode_header(raw: bytes, fail: Fail) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"safetensors header is not valid UTF-8 (byte {8 + exc.start}: {raw[exc.start : exc.start + 8]!r})")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                fail(f"safetensors header: key {quote(key)} appears twice in one object")
            result[key] = value
        return result

    def parse_int(literal: str) -> int:
        # Python < 3.11 has no limit on int literals, and int() is quadratic in their length.
        if len(literal.lstrip("-")) > MAX_INT_DIGITS:
            fail(f"safetensors header holds a {len(literal)}-digit integer (at most {MAX_INT_DIGITS})")
        return int(literal)

    def no_constant(name: str) -> NoReturn:
        fail(f"safetensors header holds {name}, which is not JSON")

    try:
        header = json.loads(text, object_pairs_hook=pairs, parse_int=parse_int, parse_constant=no_constant)
    except RecursionError:
        fail("safetensors header nests too deeply to parse")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        fail(f"safetensors header is not valid JSON ({exc})")
    if not isinstance(header, dict):
        fail(f"safetensors header is a JSON {_json_type(header)}, not an object")
    for key in header:
        _check_text(key, "a tensor name", fail)
    return header


def _metadata(raw: object, fail: Fail) -> dict[str, MetadataEntry]:
    if raw is None:  # absent; the library also reads an explicit null as absent
        return {}
    if not isinstance(raw, dict):
        fail(f"safetensors {METADATA_KEY} is a JSON {_json_type(raw)}, not an object of strings")
    metadata: dict[str, MetadataEntry] = {}
    for key, value in raw.items():
        _check_text(key, f"a {METADATA_KEY} key", fail)
        if not isinstance(value, str):
            fail(f"safetensors {METADATA_KEY} key {quote(key)} is a JSON {_json_type(value)}, not a string")
        _check_text(value, f"the {METADATA_KEY} value of {quote(key)}", fail)
        metadata[key] = MetadataEntry(key, ValueType.STRING, value)
    return metadata


def _tensor(
    name: str, entry: object, data_offset: int, data_size: int, room: int, fail: Fail
) -> tuple[TensorInfo, int, int]:
    """One header entry as a TensorInfo, with its (begin, end) relative to the data section, which
    holds data_size bytes; room is how far its data may reach (data_size, unless the file may be cut)."""
    label = f"tensor {quote(name)}"
    if not isinstance(entry, dict):
        fail(f"{label} is a JSON {_json_type(entry)}, not an object")
    missing = [f for f in TENSOR_FIELDS if f not in entry]
    if missing:
        fail(f"{label} has no {' or '.join(missing)}")
    extra = sorted(k for k in entry if k not in TENSOR_FIELDS)
    if extra:
        fail(f"{label} has unexpected field {quote(extra[0])} (only dtype, shape and data_offsets are allowed)")

    dtype = entry["dtype"]
    if not isinstance(dtype, str):
        fail(f"{label}: dtype is a JSON {_json_type(dtype)}, not a string")
    if dtype not in DTYPE_BITS:
        fail(f"{label} has unknown dtype {quote(dtype)}")

    shape = entry["shape"]
    if not isinstance(shape, list):
        fail(f"{label}: shape is a JSON {_json_type(shape)}, not an array")
    if len(shape) > MAX_DIMS:
        fail(f"{label} has {len(shape)} dimensions (at most {MAX_DIMS})")
    n_elements = 1
    for dim in shape:
        if not _is_int(dim):
            fail(f"{label}: shape holds a JSON {_json_type(dim)}, not an integer")
        if dim < 0 or dim > INT64_MAX:
            fail(f"{label}: dimension {dim} is out of range (0 to {INT64_MAX})")
        n_elements *= dim
        # Checked at each step, as the library's checked_mul does: [2**40, 2**40, 0] overflows too.
        if n_elements > INT64_MAX:
            fail(f"{label}: shape {shape} overflows a 64-bit element count")

    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        fail(f"{label}: data_offsets must be an array of two integers, not {_describe(offsets)}")
    begin, end = offsets
    if begin < 0 or end < 0:
        fail(f"{label}: data_offsets [{begin}, {end}] hold a negative offset")
    if end < begin:
        fail(f"{label}: data_offsets [{begin}, {end}] end before they begin")

    bits = n_elements * DTYPE_BITS[dtype]
    if bits % 8:  # the library refuses sub-byte tensors that end inside a byte
        fail(f"{label}: {n_elements} {dtype} elements fill {bits} bits, not whole bytes")
    if end - begin != bits // 8:
        fail(f"{label}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but {shape} {dtype} needs {bits // 8}")
    if end > room:
        fail(
            f"{label}: data [{data_offset + begin}, {data_offset + end}) lies past the end of the "
            f"{data_offset + data_size}-byte file (pyscan FILE --header-only shows the header)"
        )

    ggml_type: GGMLType | None = TYPES_BY_NAME[dtype] if dtype in GGML_TWINS else None
    info = TensorInfo(
        name=name,
        type_id=None if ggml_type is None else ggml_type.id,
        type_name=dtype,
        shape=tuple(reversed(shape)),  # innermost first, like GGUF (see the module docstring)
        n_elements=n_elements,
        offset=data_offset + begin,
        nbytes=end - begin,
        ggml_type=ggml_type,
    )
    return info, begin, end


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _check_text(text: str, what: str, fail: Fail) -> None:
    # JSON escapes can spell lone surrogates ("\ud800"), which are not Unicode and cannot be printed or encoded.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        fail(f"safetensors header: {what} ({quote(text)}) holds a lone surrogate escape")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if not isinstance(value, float) or math.isfinite(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _describe(value: object) -> str:
    if isinstance(value, list):
        return (
            f"an array of {len(value)}: "
            + ", ".join(_json_type(v) for v in value[:4])
            + (", …" if len(value) > 4 else "")
        )
    return f"a JSON {_json_type(value)}"

