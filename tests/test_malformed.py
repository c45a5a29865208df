"""Malformed input: hand-written GGUF bytes that pyscan.open must reject with a PyscanError.

Each case asserts the error type, that str(err) starts with the path, that the
reason names the fault (specific words), and that the error is a format error.
Files are built field by field with tests/gguf_bytes.py, in both byte orders
unless the case is about raw bytes.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gguf_bytes as gb
import numpy as np
import pytest
from gguf_bytes import BE, LE, Tensor  # noqa: E402

import pyscan

BYTE_ORDERS = [pytest.param(LE, id="little"), pytest.param(BE, id="big")]
U64_MAX = 2**64 - 1


# ---- the valid file every case is a variation of ------------------------------------------------


def base_kvs(bo: str) -> list[bytes]:
    return [
        gb.kv("general.architecture", gb.STRING, "llama", bo),
        gb.kv("general.alignment", gb.UINT32, 32, bo),
        gb.kv_array("tokenizer.tokens", gb.STRING, ["a", "", "é"], bo),
        gb.kv("flag", gb.BOOL, 1, bo),
    ]


def base_tensors(bo: str) -> list[Tensor]:
    return [
        Tensor("w", [4, 2], gb.F32, data=np.arange(8, dtype=bo + "f4").tobytes()),
        Tensor("q", [32, 2], gb.Q8_0, data=bytes(range(68))),
    ]


def base(
    bo: str, kvs: Sequence[bytes] | None = None, tensors: Sequence[Tensor] | None = None, **kwargs: object
) -> bytes:
    return gb.build_bytes(
        base_kvs(bo) if kvs is None else kvs, base_tensors(bo) if tensors is None else tensors, bo=bo, **kwargs
    )  # type: ignore[arg-type]


def with_kv(bo: str, *extra: bytes) -> bytes:
    """The base file with extra key/value pairs appended to its metadata."""
    return base(bo, kvs=base_kvs(bo) + list(extra))


def with_tensors(bo: str, *tensors: Tensor, **kwargs: object) -> bytes:
    return base(bo, tensors=list(tensors), **kwargs)


def raw_after_header(bo: str, n_tensors: int, n_kv: int, body: bytes, slack: int = 0) -> bytes:
    """A header, then body, then ``slack`` zero bytes (so the count check cannot fire first)."""
    return gb.header(n_tensors, n_kv, bo) + body + bytes(slack)


def check_error(path: Path, words: Sequence[str], kind: str = "format") -> pyscan.PyscanError:
    with pytest.raises(pyscan.PyscanError) as excinfo:
        pyscan.open(path)
    err = excinfo.value
    assert type(err) is pyscan.PyscanError
    assert str(err).startswith(str(path)), str(err)
    assert err.path == str(path)
    assert err.kind == kind, str(err)
    for word in words:
        assert word in err.reason, f"{word!r} not in {err.reason!r}"
    return err


def write(tmp_path: Path, blob: bytes, name: str = "case.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(blob)
    return path


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_base_file_is_valid(tmp_path: Path, bo: str) -> None:
    """The cases below are small edits of this file; it must parse, or they test nothing."""
    f = pyscan.open(write(tmp_path, base(bo)))
    assert [t.name for t in f.tensors] == ["w", "q"]
    assert f.tensors[1].nbytes == 68
    assert f.metadata["tokenizer.tokens"].value.to_list() == ["a", "", "é"]  # type: ignore[union-attr]
    np.testing.assert_array_equal(f.to_numpy("w"), np.arange(8, dtype=np.float32).reshape(2, 4))


# ---- raw bytes (no byte order) ----------------------------------------------------------------

RAW_CASES = [
    pytest.param(b"", ("not a GGUF file", "0 bytes"), id="empty-file"),
    pytest.param(b"GGU", ("not a GGUF file", "3 bytes"), id="3-bytes"),
    pytest.param(b"GGML" + base(LE)[4:], ("not a GGUF file",), id="magic-GGML"),
    pytest.param(b"gguf" + base(LE)[4:], ("not a GGUF file",), id="magic-lowercase"),
    pytest.param(b"FUGG" + base(LE)[4:], ("not a GGUF file",), id="magic-reversed"),
    pytest.param(b"\x00" * 64, ("not a GGUF file",), id="zeros"),
    pytest.param(b"GGUF", ("truncated", "version"), id="magic-only"),
    pytest.param(b"GGUF\x03\x00\x00", ("truncated", "version"), id="version-cut"),
    pytest.param(b"GGUF\x03\x00\x00\x00" + b"\x00" * 7, ("truncated", "tensor count"), id="tensor-count-cut"),
    pytest.param(b"GGUF\x03\x00\x00\x00" + b"\x00" * 15, ("truncated", "key count"), id="kv-count-cut"),
]


@pytest.mark.parametrize("blob,words", RAW_CASES)
def test_raw_bytes(tmp_path: Path, blob: bytes, words: tuple[str, ...]) -> None:
    check_error(write(tmp_path, blob), words)


# ---- cases built in either byte order ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[str], bytes]
    words: tuple[str, ...]


def long_name(n: int) -> str:
    return ("blk.0." + "x" * n)[:n]


CASES = [
    # versions
    *[
        Case(f"version-{v:#x}", lambda bo, v=v: base(bo, version=v), ("version",))
        for v in (0, 1, 4, 5, 0x0100, 0x00030000, 0x7FFFFFFF, 0xFFFFFFFF)
    ],
    Case("version-1-named", lambda bo: base(bo, version=1), ("version 1", "not supported")),
    # counts that cannot fit
    Case("n_tensors-2^63", lambda bo: base(bo, n_tensors=2**63), ("can hold",)),
    Case("n_tensors-2^64-1", lambda bo: base(bo, n_tensors=U64_MAX), ("can hold",)),
    Case("n_kv-2^63", lambda bo: base(bo, n_kv=2**63), ("can hold",)),
    Case("n_kv-2^64-1", lambda bo: base(bo, n_kv=U64_MAX), ("can hold",)),
    Case("both-counts-2^64-1", lambda bo: base(bo, n_kv=U64_MAX, n_tensors=U64_MAX), ("can hold",)),
    Case("n_kv-1000-small-file", lambda bo: base(bo, n_kv=1000), ("can hold",)),
    # one more than the bytes left could hold at 14 bytes per key/value and 25 per tensor info
    Case("n_kv-just-too-many", lambda bo: base(bo, n_kv=(len(base(bo)) - 24 - 2 * 25) // 14 + 1), ("can hold",)),
    Case(
        "n_tensors-just-too-many", lambda bo: base(bo, n_tensors=(len(base(bo)) - 24 - 4 * 14) // 25 + 1), ("can hold",)
    ),
    # key strings
    Case(
        "key-length-past-end",
        lambda bo: raw_after_header(bo, 0, 1, gb.u64(1000, bo) + b"abc", 64),
        ("truncated", "key #0"),
    ),
    Case(
        "key-length-2^64-1",
        lambda bo: raw_after_header(bo, 0, 1, gb.u64(U64_MAX, bo) + b"abc", 64),
        ("key #0", "limit"),
    ),
    Case("key-length-2^63", lambda bo: raw_after_header(bo, 0, 1, gb.u64(2**63, bo) + b"abc", 64), ("key #0", "limit")),
    Case("key-length-1GiB+1", lambda bo: raw_after_header(bo, 0, 1, gb.u64(2**30 + 1, bo), 64), ("key #0", "limit")),
    Case("key-length-1GiB", lambda bo: raw_after_header(bo, 0, 1, gb.u64(2**30, bo), 64), ("truncated", "key #0")),
    Case("key-empty", lambda bo: with_kv(bo, gb.kv("", gb.UINT8, 1, bo)), ("empty",)),
    Case("key-duplicate", lambda bo: with_kv(bo, gb.kv("flag", gb.BOOL, 0, bo)), ("'flag'", "twice")),
    Case(
        "key-duplicate-other-type", lambda bo: with_kv(bo, gb.kv("general.architecture", gb.UINT32, 1, bo)), ("twice",)
    ),
    Case("key-utf8-ff", lambda bo: with_kv(bo, gb.kv(b"bad\xff", gb.UINT8, 1, bo)), ("UTF-8",)),
    Case("key-utf8-overlong", lambda bo: with_kv(bo, gb.kv(b"\xc0\x80", gb.UINT8, 1, bo)), ("UTF-8",)),
    Case("key-utf8-surrogate", lambda bo: with_kv(bo, gb.kv(b"k\xed\xa0\x80", gb.UINT8, 1, bo)), ("UTF-8",)),
    Case("key-utf8-cut-sequence", lambda bo: with_kv(bo, gb.kv(b"ab\xe6\x97", gb.UINT8, 1, bo)), ("UTF-8",)),
    # value types and values
    Case("value-type-13", lambda bo: with_kv(bo, gb.kv_raw("k", 13, b"\x00" * 8, bo)), ("unknown value type 13",)),
    Case(
        "value-type-0x7fffffff",
        lambda bo: with_kv(bo, gb.kv_raw("k", 0x7FFFFFFF, b"\x00" * 8, bo)),
        ("unknown value type 2147483647",),
    ),
    Case(
        "value-type-u32max",
        lambda bo: with_kv(bo, gb.kv_raw("k", 0xFFFFFFFF, b"\x00" * 8, bo)),
        ("unknown value type",),
    ),
    Case("bool-2", lambda bo: with_kv(bo, gb.kv("b", gb.BOOL, 2, bo)), ("bool", "2")),
    Case("bool-255", lambda bo: with_kv(bo, gb.kv("b", gb.BOOL, 255, bo)), ("bool", "255")),
    Case("bool-array-2", lambda bo: with_kv(bo, gb.kv_array("b", gb.BOOL, [0, 1, 2, 1], bo)), ("bool",)),
    Case(
        "u64-value-cut",
        lambda bo: raw_after_header(bo, 0, 1, gb.string("k", bo) + gb.u32(gb.UINT64, bo) + b"\x00" * 4),
        ("truncated", "'k'"),
    ),
    Case(
        "string-value-past-end",
        lambda bo: raw_after_header(bo, 0, 1, gb.string("k", bo) + gb.u32(gb.STRING, bo) + gb.u64(500, bo) + b"xy", 32),
        ("truncated",),
    ),
    Case(
        "string-value-2^64-1",
        lambda bo: raw_after_header(bo, 0, 1, gb.string("k", bo) + gb.u32(gb.STRING, bo) + gb.u64(U64_MAX, bo), 32),
        ("limit",),
    ),
    # arrays
    Case(
        "array-element-type-13",
        lambda bo: with_kv(bo, gb.kv_raw("a", gb.ARRAY, gb.u32(13, bo) + gb.u64(0, bo), bo)),
        ("unknown value type 13",),
    ),
    Case(
        "array-nested",
        lambda bo: with_kv(
            bo, gb.kv_raw("a", gb.ARRAY, gb.u32(gb.ARRAY, bo) + gb.u64(1, bo) + gb.array_payload(gb.UINT8, [1], bo), bo)
        ),
        ("nested",),
    ),
    Case(
        "array-nested-empty",
        lambda bo: with_kv(bo, gb.kv_raw("a", gb.ARRAY, gb.u32(gb.ARRAY, bo) + gb.u64(0, bo), bo)),
        ("nested",),
    ),
    # count * 8 wraps to 0 (2^61) or 8 (2^61 + 1) in 64-bit arithmetic
    Case(
        "array-u64-count-2^61",
        lambda bo: with_kv(bo, gb.kv_array("a", gb.UINT64, [], bo, count=2**61)),
        ("'a'", "limit"),
    ),
    Case(
        "array-u64-count-2^61+1",
        lambda bo: with_kv(bo, gb.kv_array("a", gb.UINT64, [7], bo, count=2**61 + 1)),
        ("'a'", "limit"),
    ),
    Case("array-count-2^64-1", lambda bo: with_kv(bo, gb.kv_array("a", gb.UINT8, [], bo, count=U64_MAX)), ("limit",)),
    Case(
        "array-u8-count-past-end",
        lambda bo: with_kv(bo, gb.kv_array("a", gb.UINT8, [1], bo, count=2**30)),
        ("truncated", "'a'"),
    ),
    Case(
        "array-u64-count-1GiB-bytes",
        lambda bo: with_kv(bo, gb.kv_array("a", gb.UINT64, [1], bo, count=2**27)),
        ("truncated",),
    ),
    Case(
        "string-array-count-2^62", lambda bo: with_kv(bo, gb.kv_array("s", gb.STRING, [], bo, count=2**62)), ("limit",)
    ),
    Case(
        "string-array-count-too-many",
        lambda bo: with_kv(bo, gb.kv_array("s", gb.STRING, ["x"], bo, count=2**29)),
        ("can hold",),
    ),
    Case(
        "string-array-item-past-end",
        lambda bo: raw_after_header(
            bo,
            0,
            1,
            gb.kv_raw(
                "s",
                gb.ARRAY,
                gb.u32(gb.STRING, bo) + gb.u64(2, bo) + gb.string("ok", bo) + gb.u64(1000, bo) + b"abc",
                bo,
            ),
            16,
        ),
        ("truncated", "'s'"),
    ),
    Case(
        "string-array-item-2^64-1",
        lambda bo: with_kv(
            bo,
            gb.kv_raw(
                "s", gb.ARRAY, gb.u32(gb.STRING, bo) + gb.u64(2, bo) + gb.string("ok", bo) + gb.u64(U64_MAX, bo), bo
            ),
        ),
        ("'s'", "over"),
    ),
    # general.alignment
    *[
        Case(
            f"alignment-{a}",
            lambda bo, a=a: base(bo, kvs=[gb.kv("general.alignment", gb.UINT32, a, bo)]),
            ("alignment", "power of two"),
        )
        for a in (0, 3, 24, 48, 0xFFFFFFFF)
    ],
    *[
        Case(
            f"alignment-type-{name}",
            lambda bo, t=t, v=v: base(bo, kvs=[gb.kv("general.alignment", t, v, bo)]),
            ("alignment", "uint32"),
        )
        for name, t, v in (
            ("u64", gb.UINT64, 32),
            ("i32", gb.INT32, 32),
            ("u16", gb.UINT16, 32),
            ("u8", gb.UINT8, 32),
            ("f32", gb.FLOAT32, 32.0),
            ("string", gb.STRING, "32"),
        )
    ],
    Case(
        "alignment-type-array",
        lambda bo: base(bo, kvs=[gb.kv_array("general.alignment", gb.UINT32, [32], bo)]),
        ("alignment", "uint32"),
    ),
    # tensor names
    Case("tensor-name-64-bytes", lambda bo: with_tensors(bo, Tensor(long_name(64), [4])), ("64 bytes",)),
    Case("tensor-name-64-bytes-utf8", lambda bo: with_tensors(bo, Tensor("é" * 32, [4])), ("64 bytes",)),
    Case("tensor-name-1000-bytes", lambda bo: with_tensors(bo, Tensor(long_name(1000), [4])), ("1000 bytes",)),
    Case(
        "tensor-name-length-2^64-1",
        lambda bo: raw_after_header(bo, 1, 0, gb.u64(U64_MAX, bo), 64),
        ("tensor #0", "limit"),
    ),
    Case(
        "tensor-name-past-end",
        lambda bo: raw_after_header(bo, 1, 0, gb.u64(60, bo) + b"abc", 32),
        ("truncated", "tensor #0"),
    ),
    Case("tensor-name-utf8", lambda bo: with_tensors(bo, Tensor(b"w\xff", [4])), ("UTF-8",)),
    Case("tensor-name-utf8-surrogate", lambda bo: with_tensors(bo, Tensor(b"\xed\xbf\xbf", [4])), ("UTF-8",)),
    Case("tensor-name-duplicate", lambda bo: with_tensors(bo, Tensor("w", [4]), Tensor("w", [4])), ("'w'", "twice")),
    Case(
        "tensor-name-duplicate-far",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [8]), Tensor("a", [4])),
        ("'a'", "twice"),
    ),
    # dimensions
    Case("n_dims-5", lambda bo: with_tensors(bo, Tensor("w", [1, 1, 1, 1, 1])), ("5 dimensions",)),
    Case("n_dims-2^31", lambda bo: with_tensors(bo, Tensor("w", [4], n_dims=2**31)), ("2147483648 dimensions",)),
    Case("n_dims-u32max", lambda bo: with_tensors(bo, Tensor("w", [4], n_dims=0xFFFFFFFF)), ("dimensions",)),
    Case(
        "n_dims-4-cut",
        lambda bo: raw_after_header(bo, 1, 0, gb.string("w", bo) + gb.u32(4, bo) + gb.u64(2, bo), 8),
        ("truncated", "dimensions"),
    ),
    Case("dim-negative-1", lambda bo: with_tensors(bo, Tensor("w", [U64_MAX], data=b"")), ("negative dimension", "-1")),
    Case("dim-negative-2^63", lambda bo: with_tensors(bo, Tensor("w", [4, 2**63], data=b"")), ("negative dimension",)),
    Case(
        "dims-wrap-to-4",
        lambda bo: with_tensors(bo, Tensor("w", [4194305, 4194305, 211106198978564], data=b"")),
        ("dimensions", "overflow"),
    ),
    Case(
        "dims-2^32-x-2^31",
        lambda bo: with_tensors(bo, Tensor("w", [2**32, 2**31], data=b"")),
        ("dimensions", "overflow"),
    ),
    Case("dims-2^62-x-2", lambda bo: with_tensors(bo, Tensor("w", [2**62, 2], data=b"")), ("overflow",)),
    Case("dims-4-huge", lambda bo: with_tensors(bo, Tensor("w", [2**16] * 4, data=b"")), ("overflow",)),
    # rows that do not fill whole blocks
    Case(
        "ne0-33-Q8_0",
        lambda bo: with_tensors(bo, Tensor("q", [33, 2], gb.Q8_0, data=bytes(68))),
        ("row length 33", "block size 32"),
    ),
    Case(
        "ne0-32-Q4_K", lambda bo: with_tensors(bo, Tensor("q", [32, 8], gb.Q4_K, data=bytes(144))), ("block size 256",)
    ),
    Case("ne0-32-Q2_0", lambda bo: with_tensors(bo, Tensor("q", [32, 2], gb.Q2_0, data=bytes(18))), ("block size 64",)),
    Case(
        "ne0-1-Q6_K-in-dim1",
        lambda bo: with_tensors(bo, Tensor("q", [1, 256], gb.Q6_K, data=bytes(210))),
        ("block size",),
    ),
    # offsets
    Case(
        "offset-misaligned",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [4], offset=16)),
        ("offset 16", "alignment"),
    ),
    Case("offset-misaligned-first", lambda bo: with_tensors(bo, Tensor("a", [4], offset=1)), ("offset 1", "alignment")),
    Case(
        "offset-first-not-zero", lambda bo: with_tensors(bo, Tensor("a", [4], offset=32)), ("offset 32", "contiguous")
    ),
    Case(
        "offset-gap",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [4], offset=64)),
        ("offset 64", "contiguous"),
    ),
    Case(
        "offset-overlap",
        lambda bo: with_tensors(bo, Tensor("a", [16]), Tensor("b", [4], offset=32)),
        ("offset 32", "overlaps"),
    ),
    Case(
        "offset-same-as-previous",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [4], offset=0)),
        ("overlaps",),
    ),
    Case(
        "offset-out-of-order",
        lambda bo: with_tensors(bo, Tensor("a", [4], offset=32), Tensor("b", [4], offset=0)),
        ("offset",),
    ),
    Case(
        "offset-2^64-32",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [4], offset=2**64 - 32, data=b"")),
        ("offset",),
    ),
    Case(
        "data-cut-by-one-byte",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [8]))[:-1],
        ("'b'", "past the end"),
    ),
    Case(
        "data-missing",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("b", [1024], data=b"")),
        ("'b'", "past the end"),
    ),
    Case(
        "unknown-type-then-huge-offset",
        lambda bo: with_tensors(bo, Tensor("u", [4], 99), Tensor("b", [4], offset=2**63, data=b"")),
        ("'b'", "past the end"),
    ),
    Case(
        "unknown-type-offset-2^64-32",
        lambda bo: with_tensors(bo, Tensor("u0", [4], 99), Tensor("u", [4], 99, offset=2**64 - 32)),
        ("'u'", "past the end"),
    ),
    Case(
        "unknown-type-then-overlap",
        lambda bo: with_tensors(bo, Tensor("a", [4]), Tensor("u", [4], 99), Tensor("b", [4], offset=0), tail=bytes(64)),
        ("'b'", "overlaps"),
    ),
    Case("unknown-type-misaligned", lambda bo: with_tensors(bo, Tensor("u", [4], 99, offset=8)), ("alignment",)),
]


@pytest.mark.parametrize("bo", BYTE_ORDERS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed(tmp_path: Path, case: Case, bo: str) -> None:
    check_error(write(tmp_path, case.make(bo)), case.words)


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_empty_tensor_whose_data_start_is_past_the_end(tmp_path: Path, bo: str) -> None:
    blob = gb.build_bytes([gb.kv("k", gb.UINT8, 1, bo)], [Tensor("e", [0], gb.F32, data=b"")], bo=bo)
    unpadded = len(gb.header(1, 1, bo) + gb.kv("k", gb.UINT8, 1, bo) + gb.tensor_info("e", [0], 0, 0, bo))
    assert unpadded % 32 != 0
    check_error(write(tmp_path, blob[:unpadded]), ("'e'", "past the end"))
    assert pyscan.open(write(tmp_path, blob, "padded.gguf")).tensors[0].nbytes == 0  # the padded file is fine


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_zero_dims_block_type(tmp_path: Path, bo: str) -> None:
    # ggml sets every absent dimension to 1, so a 0-dim Q8_0 tensor has ne0 = 1 % 32 != 0.
    check_error(write(tmp_path, with_tensors(bo, Tensor("q", [], gb.Q8_0, data=bytes(34)))), ("block size",))


# ---- every prefix of a valid file -------------------------------------------------------------

PREFIX_WORDS = re.compile(r"truncated|not a GGUF file: only \d+ bytes|past the end|can hold")


@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_every_prefix_is_rejected(tmp_path: Path, bo: str) -> None:
    blob = base(bo)
    assert pyscan.open(write(tmp_path, blob, "full.gguf")).tensors[-1].nbytes == 68
    path = tmp_path / "prefix.gguf"
    wrong = []
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        try:
            pyscan.open(path)
        except pyscan.PyscanError as err:
            if not (str(err).startswith(str(path)) and err.kind == "format" and PREFIX_WORDS.search(err.reason)):
                wrong.append((n, err.reason))
        except Exception as err:  # noqa: BLE001 - any other exception type is the failure being tested
            wrong.append((n, repr(err)))
        else:
            wrong.append((n, "accepted"))
    assert wrong == []


# ---- type ids that are not errors -------------------------------------------------------------


@pytest.mark.parametrize("type_id", sorted(gb.REMOVED_TYPES), ids=lambda t: f"{t}-{gb.REMOVED_TYPES[t]}")
@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_removed_type_is_listed_without_size(tmp_path: Path, bo: str, type_id: int) -> None:
    blob = with_tensors(
        bo, Tensor("a", [4]), Tensor("old", [32, 4], type_id, data=bytes(96)), Tensor("b", [4], offset=160)
    )
    f = pyscan.open(write(tmp_path, blob))
    a, old, b = f.tensors
    assert old.type_id == type_id
    assert old.type_name == f"removed:{gb.REMOVED_TYPES[type_id]}"
    assert old.nbytes is None and old.ggml_type is None
    assert (old.shape, old.n_elements, old.offset) == ((32, 4), 128, f.data_offset + 32)
    # its size is unknown, so the next tensor may start anywhere after it (aligned)
    assert (b.offset, b.nbytes) == (f.data_offset + 160, 16)
    with pytest.raises(pyscan.PyscanError) as excinfo:
        f.to_numpy(old)
    assert excinfo.value.kind == "usage"


@pytest.mark.parametrize("type_id", [43, 99, 1000, 2**31, 2**32 - 1])
@pytest.mark.parametrize("bo", BYTE_ORDERS)
def test_unknown_type_is_listed_without_size(tmp_path: Path, bo: str, type_id: int) -> None:
    blob = with_tensors(bo, Tensor("u", [7, 3], type_id, data=bytes(40)), Tensor("b", [4], offset=64))
    f = pyscan.open(write(tmp_path, blob))
    u, b = f.tensors
    assert (u.type_id, u.type_name, u.nbytes, u.ggml_type) == (type_id, f"unknown:{type_id}", None, None)
    assert (u.shape, u.n_elements, u.offset) == ((7, 3), 21, f.data_offset)
    assert b.offset == f.data_offset + 64
    np.testing.assert_array_equal(f.to_numpy("b"), np.zeros(4, dtype=np.float32))


# ---- accepted edge values (so the rejections above are not just 'reject everything') -----------

ACCEPTED = [
    Case("tensor-name-63-bytes", lambda bo: with_tensors(bo, Tensor(long_name(63), [4])), ()),
    Case("tensor-name-63-bytes-utf8", lambda bo: with_tensors(bo, Tensor("é" * 31 + "x", [4])), ()),
    Case("n_dims-4", lambda bo: with_tensors(bo, Tensor("w", [2, 1, 3, 1])), ()),
    Case("dim-zero", lambda bo: with_tensors(bo, Tensor("w", [0, 5]), Tensor("v", [4])), ()),
    Case("dims-product-int64-max", lambda bo: with_tensors(bo, Tensor("u", [2**63 - 1], 99, data=b"")), ()),
    Case(
        "alignment-1",
        lambda bo: gb.build_bytes(
            [gb.kv("general.alignment", gb.UINT32, 1, bo)],
            [Tensor("a", [3], gb.I8), Tensor("b", [2])],
            bo=bo,
            alignment=1,
        ),
        (),
    ),
    Case(
        "bool-0-and-1", lambda bo: with_kv(bo, gb.kv("b0", gb.BOOL, 0, bo), gb.kv_array("ba", gb.BOOL, [0, 1], bo)), ()
    ),
    Case("invalid-utf8-string-value", lambda bo: with_kv(bo, gb.kv("s", gb.STRING, b"\xff\xfe", bo)), ()),
    Case("no-tensors", lambda bo: base(bo, tensors=[]), ()),
    Case("trailing-bytes", lambda bo: base(bo, tail=b"junk"), ()),
]


@pytest.mark.parametrize("bo", BYTE_ORDERS)
@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_accepted_edge_values(tmp_path: Path, case: Case, bo: str) -> None:
    f = pyscan.open(write(tmp_path, case.make(bo)))
    assert f.byte_order == ("big" if bo == BE else "little")
    if case.id == "alignment-1":
        a, b = f.tensors
        assert f.alignment == 1 and (a.offset, b.offset) == (f.data_offset, f.data_offset + 3)
    if case.id == "invalid-utf8-string-value":
        assert f.value("s") == "\ufffd\ufffd"
    if case.id == "dims-product-int64-max":
        assert f.tensors[0].n_elements == 2**63 - 1


# ---- things that are not files ----------------------------------------------------------------


def test_folder(tmp_path: Path) -> None:
    check_error(tmp_path, ("folder",), kind="io")


def test_missing_path(tmp_path: Path) -> None:
    check_error(tmp_path / "nope.gguf", ("no such file",), kind="io")


def test_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.gguf"
    link.symlink_to(tmp_path / "gone.gguf")
    check_error(link, ("no such file",), kind="io")


def test_symlink_to_valid_file(tmp_path: Path) -> None:
    target = write(tmp_path, base(LE), "real.gguf")
    link = tmp_path / "link.gguf"
    link.symlink_to(target)
    assert len(pyscan.open(link).tensors) == 2


def test_fifo_is_rejected_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            pyscan.open(fifo)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - reported to the main thread
            outcome.append(err)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():
        # open() is waiting for a writer: give it one so the thread ends, then fail.
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(timeout=5)
        pytest.fail("pyscan.open blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], pyscan.PyscanError), outcome
    err = outcome[0]
    assert str(err).startswith(str(fifo))
    assert err.kind == "io" and "not a regular file" in err.reason


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, base(LE))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions (root?)")
        check_error(path, ("permission denied",), kind="io")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_str_path_and_pathlike_agree(tmp_path: Path) -> None:
    path = write(tmp_path, b"GGUF\x04\x00\x00\x00" + bytes(16))
    errors = []
    for p in (path, str(path)):
        with pytest.raises(pyscan.PyscanError) as excinfo:
            pyscan.open(p)
        errors.append(excinfo.value)
    assert errors[0].path == errors[1].path == str(path)
    assert str(errors[0]) == str(errors[1]) == f"{path}: {errors[0].reason}"
