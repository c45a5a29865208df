"""pyscan.open against gguf-py's GGUFReader (an independent parser) on files GGUFWriter wrote.

Every file is written in tmp_path, in both byte orders where the writer supports it.
Files gguf-py cannot write (empty arrays, type ids it does not know) are written by
hand with tests/gguf_bytes.py.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import gguf_bytes as gb
import ml_dtypes
import numpy as np
import pytest

import pyscan
from pyscan.parser import MetadataArray, ValueType

QT = gguf.GGMLQuantizationType
VT = gguf.GGUFValueType
ENDIANS = [pytest.param(gguf.GGUFEndian.LITTLE, id="little"), pytest.param(gguf.GGUFEndian.BIG, id="big")]
BYTE_ORDERS = [pytest.param(gb.LE, id="little"), pytest.param(gb.BE, id="big")]


# ---- helpers ----------------------------------------------------------------------------------


def write_gguf(
    path: Path, endian: gguf.GGUFEndian, fill: Callable[[gguf.GGUFWriter], None], alignment: int | None = None
) -> Path:
    writer = gguf.GGUFWriter(path, "llama", endianess=endian)
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def order_name(endian: gguf.GGUFEndian) -> str:
    return "big" if endian == gguf.GGUFEndian.BIG else "little"


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bit patterns of a numeric array, in native byte order."""
    a = np.ascontiguousarray(a)
    native = a.astype(a.dtype.newbyteorder("="))
    return native.view(f"u{native.dtype.itemsize}")


def assert_same_as_reader(path: Path) -> pyscan.ModelFile:
    """Everything pyscan reports about the header equals what GGUFReader reports."""
    f = pyscan.open(path)
    r = gguf.GGUFReader(path)

    assert f.version == r.fields["GGUF.version"].contents()
    assert f.byte_order == ("big" if r.endianess == gguf.GGUFEndian.BIG else "little")
    assert f.alignment == int(r.alignment)
    assert f.data_offset == int(r.data_offset)
    assert f.size == os.path.getsize(path)

    reader_keys = [k for k in r.fields if not k.startswith("GGUF.")]
    assert list(f.metadata) == reader_keys  # same keys, same order
    assert f.n_kv == len(reader_keys) == r.fields["GGUF.kv_count"].contents()
    for key in reader_keys:
        field = r.fields[key]
        entry = f.metadata[key]
        assert entry.key == key
        assert int(entry.type) == int(field.types[0]), key
        if entry.type == ValueType.ARRAY:
            array = entry.value
            assert isinstance(array, MetadataArray)
            if len(field.types) > 1:  # GGUFReader records no element type for an empty array
                assert int(array.element_type) == int(field.types[-1]), key
            assert len(array) == len(field.data), key
            assert array.to_list() == field.contents(), key
        else:
            expected = field.contents()
            assert entry.value == expected or (
                isinstance(expected, float) and math.isnan(expected) and math.isnan(entry.value)
            ), key
            assert type(entry.value) is type(expected), key

    assert len(f.tensors) == len(r.tensors) == r.fields["GGUF.tensor_count"].contents()
    for info, rt in zip(f.tensors, r.tensors, strict=True):
        assert info.name == rt.name
        assert info.type_id == int(rt.tensor_type)
        assert info.type_name == rt.tensor_type.name
        assert info.ggml_type is not None and info.ggml_type.name == rt.tensor_type.name
        assert info.shape == tuple(int(d) for d in rt.shape), info.name
        assert info.n_elements == rt.n_elements
        assert info.offset == rt.data_offset
        assert info.nbytes == rt.n_bytes
        # The bytes at pyscan's offset are the bytes GGUFReader reads for the tensor.
        assert bytes(f.mapping.buffer[info.offset : info.offset + info.nbytes]) == rt.data.tobytes()
    return f


# ---- metadata ---------------------------------------------------------------------------------

SCALARS: list[tuple[str, VT, Any]] = [
    ("t.u8", VT.UINT8, 255), ("t.u8.zero", VT.UINT8, 0), ("t.i8", VT.INT8, -128), ("t.i8.max", VT.INT8, 127),
    ("t.u16", VT.UINT16, 65535), ("t.i16", VT.INT16, -32768), ("t.u32", VT.UINT32, 2**32 - 1),
    ("t.i32", VT.INT32, -(2**31)), ("t.f32", VT.FLOAT32, 3.14159), ("t.f32.tiny", VT.FLOAT32, 1e-45),
    ("t.f32.inf", VT.FLOAT32, float("-inf")), ("t.bool.true", VT.BOOL, True), ("t.bool.false", VT.BOOL, False),
    ("t.string", VT.STRING, "héllo wörld ✓ 🦙"), ("t.string.ascii", VT.STRING, "plain"),
    ("t.u64", VT.UINT64, 2**64 - 1), ("t.i64", VT.INT64, -(2**63)), ("t.i64.max", VT.INT64, 2**63 - 1),
    ("t.f64", VT.FLOAT64, 2.718281828459045), ("t.f64.neg", VT.FLOAT64, -1e300),
]  # fmt: skip


def expected_scalar(vtype: VT, value: Any) -> Any:
    if vtype == VT.FLOAT32:
        return float(np.float32(value))
    return value


@pytest.mark.parametrize("endian", ENDIANS)
def test_scalar_metadata_of_every_type(tmp_path: Path, endian: gguf.GGUFEndian) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        for key, vtype, value in SCALARS:
            w.add_key_value(key, value, vtype)

    f = assert_same_as_reader(write_gguf(tmp_path / "scalars.gguf", endian, fill))
    assert f.byte_order == order_name(endian)
    assert f.version == 3
    assert f.tensors == []
    assert f.value("general.architecture") == "llama"
    for key, vtype, value in SCALARS:
        entry = f.metadata[key]
        assert entry.type == ValueType(int(vtype))
        assert entry.value == expected_scalar(vtype, value)
        assert type(entry.value) is type(value), key
    assert f.value("no.such.key") is None


ARRAYS: list[tuple[str, VT, list[Any]]] = [
    ("a.u8", VT.UINT8, [0, 1, 127, 255]), ("a.i8", VT.INT8, [-128, -1, 0, 127]),
    ("a.u16", VT.UINT16, [0, 1, 65535]), ("a.i16", VT.INT16, [-32768, 0, 32767]),
    ("a.u32", VT.UINT32, [0, 2**32 - 1, 12345678]), ("a.i32", VT.INT32, [-(2**31), 0, 2**31 - 1]),
    ("a.f32", VT.FLOAT32, [0.0, -0.0, 1.5, -2.25, float("inf"), 1e-40]),
    ("a.u64", VT.UINT64, [0, 2**64 - 1, 2**40]), ("a.i64", VT.INT64, [-(2**63), -1, 2**63 - 1]),
    ("a.f64", VT.FLOAT64, [0.1, -1e300, 5e-324]), ("a.bool", VT.BOOL, [True, False, False, True]),
    ("a.single", VT.INT32, [7]),
    ("a.str", VT.STRING, ["", "a", "", "héllo", "日本語", "🦙🦙", "tab\tnew\nline", ""]),
    ("a.str.empty_only", VT.STRING, [""]),
]  # fmt: skip
NUMPY_OF = {
    VT.UINT8: np.uint8,
    VT.INT8: np.int8,
    VT.UINT16: np.uint16,
    VT.INT16: np.int16,
    VT.UINT32: np.uint32,
    VT.INT32: np.int32,
    VT.FLOAT32: np.float32,
    VT.UINT64: np.uint64,
    VT.INT64: np.int64,
    VT.FLOAT64: np.float64,
    VT.BOOL: np.bool_,
}


@pytest.mark.parametrize("endian", ENDIANS)
def test_array_metadata_of_every_type(tmp_path: Path, endian: gguf.GGUFEndian) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        for key, vtype, values in ARRAYS:
            w.add_key_value(key, values, VT.ARRAY, sub_type=vtype)

    f = assert_same_as_reader(write_gguf(tmp_path / "arrays.gguf", endian, fill))
    for key, vtype, values in ARRAYS:
        entry = f.metadata[key]
        assert entry.type == ValueType.ARRAY
        array = entry.value
        assert isinstance(array, MetadataArray)
        assert array.element_type == ValueType(int(vtype))
        assert len(array) == len(values)
        if vtype == VT.STRING:
            assert array.to_list() == values
            with pytest.raises(TypeError):
                array.to_numpy()
            continue
        expected = np.array(values, dtype=NUMPY_OF[vtype])
        got = array.to_numpy()
        assert got.shape == expected.shape
        assert got.dtype.newbyteorder("=") == expected.dtype
        np.testing.assert_array_equal(got, expected)
        if vtype != VT.BOOL:
            assert np.array_equal(bits(got), bits(expected))  # -0.0 and subnormals kept exactly
            big = endian == gguf.GGUFEndian.BIG
            assert got.dtype.byteorder in (("|", ">") if big else ("|", "=", "<"))
        assert array.to_list() == [expected_scalar(vtype, v) for v in values]


@pytest.mark.parametrize(
    "elem_type", [gb.UINT8, gb.INT32, gb.FLOAT64, gb.BOOL, gb.STRING], ids=["u8", "i32", "f64", "bool", "string"]
)
@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_empty_array(tmp_path: Path, bo: str, elem_type: int) -> None:
    # GGUFWriter refuses empty arrays, so this file is written by hand.
    blob = gb.build_bytes(
        [
            gb.kv("general.architecture", gb.STRING, "llama", bo),
            gb.kv_array("empty", elem_type, [], bo),
            gb.kv("after", gb.UINT32, 77, bo),
        ],
        [gb.Tensor("w", [4], gb.F32, data=np.arange(4, dtype=bo + "f4").tobytes())],
        bo=bo,
    )
    path = tmp_path / "empty_array.gguf"
    path.write_bytes(blob)
    f = assert_same_as_reader(path)
    array = f.metadata["empty"].value
    assert isinstance(array, MetadataArray)
    assert len(array) == 0
    assert array.element_type == ValueType(elem_type)
    assert array.to_list() == []
    if elem_type != gb.STRING:
        assert array.to_numpy().size == 0
    assert f.value("after") == 77
    np.testing.assert_array_equal(f.to_numpy("w"), np.arange(4, dtype=np.float32))


VOCAB = 262_144


@pytest.fixture(scope="module")
def vocab() -> list[str]:
    return [f"▁tok{i}é" if i % 3 == 0 else ("" if i % 1000 == 1 else f"<0x{i:05X}>") for i in range(VOCAB)]


@pytest.mark.parametrize("endian", ENDIANS)
def test_large_string_array(tmp_path: Path, endian: gguf.GGUFEndian, vocab: list[str]) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        w.add_key_value("tokenizer.ggml.tokens", vocab, VT.ARRAY, sub_type=VT.STRING)
        w.add_array("tokenizer.ggml.scores", [float(i) for i in range(1000)])
        w.add_uint32("after.tokens", 424242)

    path = write_gguf(tmp_path / "vocab.gguf", endian, fill)
    f = pyscan.open(path)
    tokens = f.metadata["tokenizer.ggml.tokens"].value
    assert isinstance(tokens, MetadataArray)
    assert len(tokens) == VOCAB
    assert tokens.to_list() == vocab
    assert f.value("after.tokens") == 424242
    assert len(f.metadata["tokenizer.ggml.scores"].value) == 1000  # type: ignore[arg-type]
    if endian == gguf.GGUFEndian.LITTLE:  # GGUFReader takes seconds on this; once is enough
        field = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"]
        assert len(field.data) == VOCAB
        items = tokens.to_list()
        for i in (0, 1, 2, 1001, 131_072, VOCAB - 1):
            assert items[i] == field.contents(i), i


# ---- alignment and layout ---------------------------------------------------------------------


def odd_sized_tensors(w: gguf.GGUFWriter) -> None:
    w.add_tensor("a", np.arange(3, dtype=np.float32))  # 12 bytes: padding follows
    w.add_tensor("b", np.arange(5, dtype=np.int8))  # 5 bytes
    w.add_tensor("c", np.arange(6, dtype=np.float64).reshape(2, 3))
    w.add_tensor("d", np.arange(7, dtype=np.int16))


@pytest.mark.parametrize("alignment", [None, 1, 2, 8, 64, 256, 4096], ids=lambda a: f"align{a}")
@pytest.mark.parametrize("endian", ENDIANS)
def test_custom_alignment(tmp_path: Path, endian: gguf.GGUFEndian, alignment: int | None) -> None:
    path = write_gguf(tmp_path / "aligned.gguf", endian, odd_sized_tensors, alignment)
    f = assert_same_as_reader(path)
    align = 32 if alignment is None else alignment
    assert f.alignment == align
    assert ("general.alignment" in f.metadata) == (alignment is not None)
    assert f.data_offset % align == 0
    assert f.tensors[0].offset == f.data_offset
    for prev, info in zip(f.tensors, f.tensors[1:], strict=False):
        assert prev.nbytes is not None
        assert info.offset == f.data_offset + gb.pad(prev.offset - f.data_offset + prev.nbytes, align)
    np.testing.assert_array_equal(f.to_numpy("a"), np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(f.to_numpy("b"), np.arange(5, dtype=np.int8))
    np.testing.assert_array_equal(f.to_numpy("c"), np.arange(6, dtype=np.float64).reshape(2, 3))
    np.testing.assert_array_equal(f.to_numpy("d"), np.arange(7, dtype=np.int16))


# ---- tensor types -----------------------------------------------------------------------------


def plain_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    f32 = rng.standard_normal((3, 8)).astype(np.float32)
    f32.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 1e-42, np.float32(3.0e38)]
    f16 = rng.standard_normal((2, 4, 6)).astype(np.float16)
    f16.flat[:3] = [np.inf, -0.0, 6e-8]
    return {
        "f32": f32,
        "f16": f16,
        "f64": rng.standard_normal((5, 2)),
        "i8": rng.integers(-128, 128, size=(4, 9), dtype=np.int8),
        "i16": rng.integers(-(2**15), 2**15, size=(17,), dtype=np.int16),
        "i32": rng.integers(-(2**31), 2**31, size=(2, 2, 2, 3), dtype=np.int32),
        "i64": rng.integers(-(2**63), 2**63 - 1, size=(3, 5), dtype=np.int64),
    }


PLAIN_TYPE_NAMES = {"f32": "F32", "f16": "F16", "f64": "F64", "i8": "I8", "i16": "I16", "i32": "I32", "i64": "I64"}
QUANT_TYPES = [t for t in QT if gguf.GGML_QUANT_SIZES[t][0] > 1]  # every block type gguf-py knows


def bf16_bits() -> np.ndarray:
    values = np.array([[1.0, -2.5, 0.0, -0.0], [np.inf, np.nan, 3.0e38, 1e-40]], dtype=np.float32)
    return values.astype(ml_dtypes.bfloat16).view(np.uint16)


def test_big_endian_bf16_gives_the_little_endian_values(tmp_path: Path) -> None:
    # to_numpy gave a big-endian file's BF16 tensor as its raw ">u2" words, not as bfloat16 values.
    rng = np.random.default_rng(16)
    words = np.concatenate([bf16_bits().ravel(), rng.integers(0, 1 << 16, 3 * 37, dtype=np.uint32).astype(np.uint16)])
    words = words[: 3 * 37].reshape(3, 37)  # NaN, infinities, -0.0, subnormals and random words

    def fill(w: gguf.GGUFWriter) -> None:
        w.add_tensor("bf16", words.copy(), raw_dtype=QT.BF16)  # copied: a big-endian writer swaps in place

    got = {}
    for endian in (gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG):
        path = write_gguf(tmp_path / f"{order_name(endian)}.gguf", endian, fill)
        # the oracle: gguf-py's reader gives the file's words; swapped to native, they are the values
        stored = np.asarray(gguf.GGUFReader(path).tensors[0].data).ravel().view(np.dtype(
            (">" if endian == gguf.GGUFEndian.BIG else "<") + "u2"))  # fmt: skip
        assert np.array_equal(stored.astype(np.uint16), words.ravel())
        f = pyscan.open(path)
        array = f.to_numpy("bf16")
        assert array.dtype == np.dtype(ml_dtypes.bfloat16) and array.shape == (3, 37), (endian, array.dtype)
        assert not array.flags.writeable
        got[endian] = array
    expected = words.view(ml_dtypes.bfloat16)
    for array in got.values():
        assert np.array_equal(array.view(np.uint16), words)  # bit for bit: NaN payloads and -0.0 too
        np.testing.assert_array_equal(array.astype(np.float32), expected.astype(np.float32))


def quant_bytes(qtype: QT, rows: int, row_blocks: int) -> tuple[np.ndarray, tuple[int, int]]:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    data = np.random.default_rng(int(qtype)).integers(0, 256, size=(rows, row_blocks * size), dtype=np.uint8)
    return data, (rows, row_blocks * block)


@pytest.mark.parametrize("endian", ENDIANS)
def test_tensor_types(tmp_path: Path, endian: gguf.GGUFEndian) -> None:
    plain = plain_arrays()
    quants = {qtype: quant_bytes(qtype, rows=2, row_blocks=1 + int(qtype) % 3) for qtype in QUANT_TYPES}

    def fill(w: gguf.GGUFWriter) -> None:
        for name, array in plain.items():
            w.add_tensor(name, array)
        w.add_tensor("bf16", bf16_bits(), raw_dtype=QT.BF16)
        for qtype, (data, _shape) in quants.items():
            # with uint8 data gguf-py takes raw_shape in bytes and converts it to elements
            w.add_tensor(f"q.{qtype.name}", data, raw_shape=data.shape, raw_dtype=qtype)

    f = assert_same_as_reader(write_gguf(tmp_path / "types.gguf", endian, fill))
    assert len(f.tensors) == len(plain) + 1 + len(quants)

    for name, expected in plain.items():
        info = f.tensor(name)
        assert info.type_name == PLAIN_TYPE_NAMES[name]
        assert info.shape == tuple(reversed(expected.shape))
        assert info.n_elements == expected.size
        assert info.nbytes == expected.nbytes
        got = f.to_numpy(name)
        assert got.shape == expected.shape
        assert got.dtype.newbyteorder("=") == expected.dtype
        assert got.dtype.byteorder in (("|", ">") if endian == gguf.GGUFEndian.BIG else ("|", "=", "<"))
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(bits(got), bits(expected)), name  # NaN, -0.0 and subnormals exactly
        assert not got.flags.writeable and not got.flags.owndata  # a view of the mapping, not a copy

    info = f.tensor("bf16")
    assert (info.type_name, info.shape, info.n_elements, info.nbytes) == ("BF16", (4, 2), 8, 16)
    got = f.to_numpy(info)
    assert got.shape == (2, 4)
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)  # either byte order (a big-endian file: swapped)
    assert np.array_equal(got.view(np.uint16), bf16_bits())

    for qtype, (data, shape) in quants.items():
        info = f.tensor(f"q.{qtype.name}")
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        assert info.type_name == qtype.name and info.type_id == int(qtype)
        assert info.shape == (shape[1], shape[0])
        assert info.n_elements == shape[0] * shape[1]
        assert info.nbytes == data.nbytes == info.n_elements // block * size
        assert info.ggml_type is not None
        assert (info.ggml_type.block_elements, info.ggml_type.block_bytes) == (block, size)
        assert bytes(f.mapping.buffer[info.offset : info.offset + info.nbytes]) == data.tobytes()
        with pytest.raises(pyscan.PyscanError) as excinfo:
            f.to_numpy(info)
        assert excinfo.value.kind == "usage"


@pytest.mark.parametrize("endian", ENDIANS)
def test_scalar_and_empty_tensors(tmp_path: Path, endian: gguf.GGUFEndian) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        w.add_tensor("scalar", np.array(2.5, dtype=np.float32))  # n_dims 0
        w.add_tensor("empty", np.zeros((0, 4), dtype=np.float32))  # a zero dimension
        w.add_tensor("last", np.arange(3, dtype=np.int32))

    f = assert_same_as_reader(write_gguf(tmp_path / "odd_shapes.gguf", endian, fill))
    scalar, empty, last = f.tensors
    assert (scalar.shape, scalar.n_elements, scalar.nbytes) == ((), 1, 4)
    assert f.to_numpy(scalar).shape == () and float(f.to_numpy(scalar)) == 2.5
    assert (empty.shape, empty.n_elements, empty.nbytes) == ((4, 0), 0, 0)
    assert f.to_numpy("empty").shape == (0, 4)
    assert last.offset == empty.offset  # a zero-byte tensor takes no room
    np.testing.assert_array_equal(f.to_numpy(last), [0, 1, 2])


def test_views_outlive_close(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "close.gguf", gguf.GGUFEndian.LITTLE, lambda w: w.add_tensor("w", np.arange(1024, dtype=np.float32))
    )
    with pyscan.open(path) as f:
        view = f.to_numpy("w")
    with pytest.raises(pyscan.PyscanError):
        f.to_numpy("w")
    del f
    np.testing.assert_array_equal(view, np.arange(1024, dtype=np.float32))


def test_lookup_by_missing_name(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "names.gguf", gguf.GGUFEndian.LITTLE, lambda w: w.add_tensor("w", np.arange(4, dtype=np.float32))
    )
    f = pyscan.open(path)
    assert f.tensor("w").name == "w"
    with pytest.raises(KeyError):
        f.tensor("nope")


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_versions_2_and_3(tmp_path: Path, bo: str, version: int) -> None:
    path = tmp_path / "v.gguf"
    path.write_bytes(
        gb.build_bytes(
            [gb.kv("general.architecture", gb.STRING, "llama", bo)],
            [gb.Tensor("w", [3], gb.F32, data=np.ones(3, dtype=bo + "f4").tobytes())],
            bo=bo,
            version=version,
        )
    )
    f = assert_same_as_reader(path)
    assert f.version == version
    assert f.byte_order == ("big" if bo == gb.BE else "little")
    assert f.swap == (f.byte_order != sys.byteorder)
    np.testing.assert_array_equal(f.to_numpy("w"), np.ones(3, dtype=np.float32))


# ---- type ids gguf-py does not know -----------------------------------------------------------


def patch_tensor_type(blob: bytes, name: str, n_dims: int, new_type: int, bo: str) -> bytes:
    marker = gb.string(name, bo) + gb.u32(n_dims, bo)
    at = blob.index(marker)
    assert blob.count(marker) == 1
    type_at = at + len(marker) + 8 * n_dims
    return blob[:type_at] + gb.u32(new_type, bo) + blob[type_at + 4 :]


@pytest.mark.parametrize(
    "new_type,label",
    [
        (99, "unknown:99"),
        (43, "unknown:43"),
        (2**32 - 1, "unknown:4294967295"),
        (31, "removed:Q4_0_4_4"),
        (4, "removed:Q4_2"),
    ],
    ids=["99", "43", "u32max", "removed31", "removed4"],
)
@pytest.mark.parametrize("endian", ENDIANS)
def test_unknown_type_id_is_listed_not_fatal(
    tmp_path: Path, endian: gguf.GGUFEndian, new_type: int, label: str
) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        w.add_tensor("first", np.arange(8, dtype=np.float32))
        w.add_tensor("blk.0.mystery", np.arange(64, dtype=np.float32).reshape(2, 32))
        w.add_tensor("last", np.arange(5, dtype=np.int16))

    path = write_gguf(tmp_path / "known.gguf", endian, fill)
    before = assert_same_as_reader(path)
    bo = gb.BE if endian == gguf.GGUFEndian.BIG else gb.LE
    patched = tmp_path / "patched.gguf"
    patched.write_bytes(patch_tensor_type(path.read_bytes(), "blk.0.mystery", 2, new_type, bo))

    f = pyscan.open(patched)
    first, mystery, last = f.tensors
    assert mystery.type_id == new_type
    assert mystery.type_name == label
    assert mystery.nbytes is None and mystery.ggml_type is None
    assert mystery.shape == (32, 2) and mystery.n_elements == 64
    assert mystery.offset == before.tensors[1].offset
    with pytest.raises(pyscan.PyscanError):
        f.to_numpy(mystery)
    for got, ref in ((first, before.tensors[0]), (last, before.tensors[2])):
        assert got == ref  # every field, offset and size included
    assert f.metadata.keys() == before.metadata.keys()
    np.testing.assert_array_equal(f.to_numpy("first"), np.arange(8, dtype=np.float32))
    np.testing.assert_array_equal(f.to_numpy("last"), np.arange(5, dtype=np.int16))


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_q2_0_type_42(tmp_path: Path, bo: str) -> None:
    # gguf-py 0.19 does not know id 42, so the header is written by hand: 64 elements per 18-byte block.
    q_data = bytes(range(256)) * 2  # more than enough; trimmed below
    q_bytes = q_data[: (128 // 64) * 18 * 3]  # shape [128, 3]: 6 blocks, 108 bytes
    layout = gb.build(
        [gb.kv("general.architecture", gb.STRING, "llama", bo)],
        [
            gb.Tensor("q2", [128, 3], gb.Q2_0, data=q_bytes),
            gb.Tensor("after", [4], gb.F32, data=np.arange(4, dtype=bo + "f4").tobytes()),
        ],
        bo=bo,
    )
    path = tmp_path / "q2_0.gguf"
    path.write_bytes(layout.blob)
    f = pyscan.open(path)
    q2, after = f.tensors
    assert (q2.type_id, q2.type_name, q2.shape, q2.n_elements) == (42, "Q2_0", (128, 3), 384)
    assert q2.nbytes == 108
    assert q2.ggml_type is not None and (q2.ggml_type.block_elements, q2.ggml_type.block_bytes) == (64, 18)
    assert q2.offset == layout.offsets[0] == f.data_offset
    assert bytes(f.mapping.buffer[q2.offset : q2.offset + q2.nbytes]) == q_bytes
    assert after.offset == layout.offsets[1] == f.data_offset + gb.pad(108, 32)
    np.testing.assert_array_equal(f.to_numpy(after), np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("type_id", sorted(gb.GGML_TYPES), ids=lambda t: gb.GGML_TYPES[t][0])
def test_every_reference_type_size(tmp_path: Path, type_id: int) -> None:
    """pyscan's size table against the reference notes' table, one hand-written file per type."""
    name, block, size = gb.GGML_TYPES[type_id]
    shape = [block * 3, 2, 1]
    layout = gb.build([], [gb.Tensor("t", shape, type_id), gb.Tensor("next", [1], gb.I8)])
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(layout.blob)
    f = pyscan.open(path)
    info, nxt = f.tensors
    assert info.type_name == name
    assert info.n_elements == block * 6
    assert info.nbytes == 6 * size
    assert nxt.offset == layout.offsets[1]
    if type_id in {int(t) for t in QT}:  # and against gguf-py's table where it has the type
        assert gguf.GGML_QUANT_SIZES[QT(type_id)] == (block, size)


# ---- many tensors: the C walk and layout check go chunk by chunk ------------------------------


def _many(tmp_path: Path, bo: str, tensors: list[gb.Tensor], name: str = "many.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(gb.build_bytes([], tensors, bo=bo))
    return path


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_more_tensors_than_one_walk_step_match_ggufreader(tmp_path: Path, bo: str) -> None:
    from pyscan.parser.gguf import WALK_STEP

    types = [gb.F32, gb.F16, 8, gb.BF16]  # 8: Q8_0, a block type (row length a multiple of 32)
    tensors = [gb.Tensor(f"blk.{i}.w", [32, 1 + i % 3], types[i % 4]) for i in range(2 * WALK_STEP + 3)]
    path = _many(tmp_path, bo, tensors)
    with pyscan.open(path) as model:
        got = [(t.name, t.type_id, list(t.shape), t.offset, t.nbytes) for t in model.tensors]
    reader = gguf.GGUFReader(path)
    want = [(t.name, int(t.tensor_type), [int(d) for d in t.shape], int(t.data_offset), int(t.n_bytes))
            for t in reader.tensors]  # fmt: skip
    assert got == want


@pytest.mark.parametrize("where", [0, 5, 1 << 16, (1 << 16) + 1, 2 * (1 << 16) - 1])
def test_a_layout_error_in_any_walk_step_is_named(tmp_path: Path, where: int) -> None:
    tensors = [gb.Tensor(f"t.{i}", [8]) for i in range(2 * (1 << 16))]
    tensors[where] = gb.Tensor(f"t.{where}", [8], offset=where * 32 + 4)  # misaligned
    path = _many(tmp_path, gb.LE, tensors)
    message = rf"tensor 't\.{where}': data offset {where * 32 + 4} is not a multiple"
    with pytest.raises(pyscan.PyscanError, match=message):
        pyscan.open(path)


def test_a_duplicate_name_far_apart_is_named(tmp_path: Path) -> None:
    tensors = [gb.Tensor(f"t.{i}", [8]) for i in range((1 << 16) + 10)]
    tensors[-1] = gb.Tensor("t.3", [8])
    with pytest.raises(pyscan.PyscanError, match=r"tensor 't\.3' appears twice"):
        pyscan.open(_many(tmp_path, gb.LE, tensors))


@pytest.mark.parametrize("endian", ENDIANS)
@pytest.mark.parametrize("alignment", [1, 2, 32])
def test_joined_words_are_the_tensors_bytes_in_order(tmp_path: Path, endian: gguf.GGUFEndian, alignment: int) -> None:
    rng = np.random.default_rng(alignment)
    sizes = [1, 3, 7, 16, 33, 100]

    def fill(writer: gguf.GGUFWriter) -> None:
        for i, n in enumerate(sizes):
            writer.add_tensor(f"h.{i}", rng.standard_normal(n).astype(np.float16))  # 2-byte values between them
            writer.add_tensor(f"f.{i}", rng.standard_normal(n).astype(np.float32))

    path = write_gguf(tmp_path / "joined.gguf", endian, fill, alignment)
    reader = gguf.GGUFReader(path)
    order = ">" if endian == gguf.GGUFEndian.BIG else "<"
    with pyscan.open(path) as model:
        for prefix, width in (("f.", 4), ("h.", 2)):
            chosen = [t for t in model.tensors if t.name.startswith(prefix)]
            raw = b"".join(bytes(t.data.tobytes()) for t in reader.tensors if t.name.startswith(prefix))
            want = np.frombuffer(raw, dtype=f"{order}u{width}")
            got = model.joined_words(chosen)
            assert got.dtype == want.dtype and np.array_equal(got, want)
