"""safetensors files: parsed, scanned and fake-quantized through the same interface as GGUF.

The oracles are independent of pyscan: the safetensors library (save_file
writes the inputs, load_file and deserialize read them back), json + struct
for the header, and numpy / ml_dtypes for the values (tests/oracles.py).
Malformed headers are written by hand and must raise a PyscanError with a
specific reason; through the CLI, exit status 2 and one stderr line.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from cli_runner import pyscan_cli
from oracles import BF16, COUNTS, F32_SPECIALS, f32_test_words, fake_quant

import pyscan
from pyscan.native import map_file
from pyscan.parser.safetensors import parse_safetensors

Array = np.ndarray[Any, Any]
HAVE_LIBRARY = importlib.util.find_spec("safetensors") is not None
GGML_IDS = {"F32": 0, "F16": 1, "F64": 28, "I8": 24, "I16": 25, "I32": 26, "I64": 27, "BF16": 30}


@pytest.fixture(scope="module")
def st() -> ModuleType:
    """safetensors.numpy, the oracle (only the tests that read or write through it need it)."""
    module: ModuleType = pytest.importorskip("safetensors.numpy")
    return module


def raw_file(header: dict[str, Any] | str | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file written byte by byte: u64 length, header, data (length overrides the u64)."""
    text = json.dumps(header) if isinstance(header, dict) else header
    blob = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(blob) if length is None else length) + blob + data


def entry(dtype: str, shape: list[Any], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def independent_parse(path: Path) -> tuple[int, dict[str, Any]]:
    """(header length, header object) by json + struct, without pyscan."""
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    return n, json.loads(raw[8 : 8 + n])


def bits(array: Array) -> Array:
    """The array's elements as unsigned words of their width, flattened (NaN payloads compare exactly)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.dtype(f"u{flat.dtype.itemsize}"))


# ---- the checkpoint every oracle test reads ------------------------------------------------------


def checkpoint_tensors() -> dict[str, Array]:
    rng = np.random.default_rng(7)
    f16 = rng.standard_normal(61).astype(np.float16)
    f16[:6] = [np.inf, -np.inf, np.nan, -0.0, 6e-8, 1e-5]  # specials and FP16 subnormals
    bf16 = (rng.standard_normal((5, 9)) * 100).astype(BF16)
    bf16.reshape(-1)[:5] = np.array([np.inf, np.nan, -0.0, 1e-40, 3e38], dtype=np.float32).astype(BF16)
    return {
        "model.layers.0.mlp.weight": rng.standard_normal((16, 33)).astype(np.float32),  # odd row length
        "model.layers.0.norm.weight": rng.standard_normal((7, 5)).astype(BF16).astype(np.float32),  # BF16-exact
        "specials": F32_SPECIALS.view(np.float32).copy(),  # NaN payloads, infinities, -0, subnormals
        "mixed": f32_test_words(7 * 11 * 13, seed=3).view(np.float32).reshape(7, 11, 13),
        "scalar": np.array(0.1, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "f16": f16,
        "bf16": bf16,
        "f64": rng.standard_normal((3, 4)),
        "i32": np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        "u8": np.arange(11, dtype=np.uint8),
    }


METADATA = {"format": "pt", "note": "zéro ünïcode"}


@pytest.fixture(scope="module")
def checkpoint(st: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("st") / "model.safetensors"
    st.save_file(checkpoint_tensors(), str(path), metadata=METADATA)
    return path


# ---- (1) the header and the tensor views ---------------------------------------------------------


def test_header_matches_an_independent_parse(checkpoint: Path) -> None:
    n, header = independent_parse(checkpoint)
    metadata = header.pop("__metadata__")
    expected = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    with pyscan.open(checkpoint) as model:
        assert (model.format, model.version, model.byte_order) == ("safetensors", None, "little")  # no version
        assert (model.data_offset, model.size) == (8 + n, checkpoint.stat().st_size)
        assert {k: (e.type, e.value) for k, e in model.metadata.items()} == {
            k: (pyscan.parser.metadata.ValueType.STRING, v) for k, v in metadata.items()
        }
        assert [t.name for t in model.tensors] == [name for name, _ in expected]
        for info, (_, fields) in zip(model.tensors, expected, strict=True):
            begin, end = fields["data_offsets"]
            assert info.type_name == fields["dtype"]
            assert info.type_id == GGML_IDS.get(fields["dtype"])  # None: a dtype GGUF has no id for
            assert (info.ggml_type is None) == (fields["dtype"] not in GGML_IDS)
            assert info.shape == tuple(reversed(fields["shape"]))  # innermost first, like GGUF
            assert info.n_elements == int(np.prod(fields["shape"]))
            assert (info.offset, info.nbytes) == (8 + n + begin, end - begin)


def test_views_equal_load_file(checkpoint: Path, st: ModuleType) -> None:
    arrays = st.load_file(str(checkpoint))
    with pyscan.open(checkpoint) as model:
        assert {t.name for t in model.tensors} == set(arrays)
        for info in model.tensors:
            want = arrays[info.name]
            raw = bytes(model.mapping.buffer[info.offset : info.offset + (info.nbytes or 0)])
            assert raw == want.tobytes(), info.name  # offsets and sizes, for every dtype
            if info.type_name == "U8":  # to_numpy covers the ggml types only
                continue
            view = model.to_numpy(info)
            assert view.shape == want.shape and view.dtype == want.dtype, info.name
            assert np.array_equal(bits(view), bits(want)), info.name


# ---- (2) scanning --------------------------------------------------------------------------------


def test_scan_counts_equal_numpy(checkpoint: Path, st: ModuleType) -> None:
    arrays = st.load_file(str(checkpoint))
    report = pyscan.scan(checkpoint)
    assert report.format == "safetensors" and report.to_dict()["format"] == "safetensors"
    scanned = {t.name for t in report.scanned()}
    assert scanned == {name for name, a in arrays.items() if a.dtype in (np.float32, np.float16, BF16)}
    for tensor in report.scanned():
        words = bits(arrays[tensor.name])
        want = COUNTS[tensor.type](words)
        if tensor.type == "F32":  # the headline count, spelled out
            want["bf16_exact"] = int(np.count_nonzero((words & 0xFFFF) == 0))
        if tensor.type == "BF16":
            want["bf16_exact"] = words.size
        assert tensor.counts is not None
        assert tensor.counts == {key: want[key] for key in tensor.counts}, tensor.name
    specials = next(t for t in report.tensors if t.name == "specials")
    assert min(specials.count(key) for key in ("nan", "inf", "zero", "subnormal")) > 0  # the data reaches them


def test_cli_json_and_text_report(checkpoint: Path) -> None:
    result = pyscan_cli(str(checkpoint), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    n, header = independent_parse(checkpoint)
    header.pop("__metadata__")
    assert data["format"] == "safetensors" and data["n_kv"] == len(METADATA)
    assert {t["name"]: (t["type"], t["shape"], t["offset"]) for t in data["tensors"]} == {
        name: (f["dtype"], f["shape"][::-1], 8 + n + f["data_offsets"][0]) for name, f in header.items()
    }
    text = pyscan_cli(str(checkpoint), "--per-tensor")
    assert text.returncode == 0, text.stderr
    assert "safetensors, " in text.stdout and "Verdict:" in text.stdout


# ---- (3) writing ---------------------------------------------------------------------------------


def rewrite(source: Path, out: Path, *mode: str) -> None:
    result = pyscan_cli(str(source), *mode, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.exists()


def check_rewritten(
    source: Path, out: Path, st: ModuleType, expect: Callable[[Array], Array], nan_exact: bool = False
) -> None:
    """OUT loads, its F32 arrays are expect(IN's), everything else (header included) is byte-identical."""
    n, _ = independent_parse(source)
    assert out.stat().st_size == source.stat().st_size
    assert out.read_bytes()[: 8 + n] == source.read_bytes()[: 8 + n]
    before, after = st.load_file(str(source)), st.load_file(str(out))
    assert set(before) == set(after)
    for name, old in before.items():
        new = after[name]
        assert new.shape == old.shape and new.dtype == old.dtype, name
        if old.dtype != np.float32:
            assert np.array_equal(bits(new), bits(old)), name
            continue
        want = expect(old)
        nan = np.isnan(old.reshape(-1))
        assert np.array_equal(np.isnan(new.reshape(-1)), nan), f"{name}: a NaN must stay a NaN"
        keep = slice(None) if nan_exact else ~nan
        assert np.array_equal(bits(new)[keep], bits(want)[keep]), name


def test_truncate_bf16_masks_the_low_16_bits(checkpoint: Path, st: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out.safetensors"
    rewrite(checkpoint, out, "--truncate", "bf16")
    check_rewritten(checkpoint, out, st, lambda x: (bits(x) & np.uint32(0xFFFF0000)).view(np.float32))
    assert all(t.count("low16_zero") == t.n_elements for t in pyscan.scan(out).scanned("F32"))
    # The masked words of the source really differ: the check above could not pass on a plain copy.
    assert out.read_bytes() != checkpoint.read_bytes()


def test_round_bf16_equals_ml_dtypes(checkpoint: Path, st: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out.safetensors"
    rewrite(checkpoint, out, "--round", "bf16")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to infinity; casting signaling NaNs
        check_rewritten(checkpoint, out, st, lambda x: x.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_fake_quant_rows_are_numpys_last_axis(checkpoint: Path, st: ModuleType, tmp_path: Path) -> None:
    # Rows run along the innermost dimension: shape[0] in pyscan's order, the last axis in numpy's.
    out = tmp_path / "out.safetensors"
    rewrite(checkpoint, out, "--fake-quant", "int4")

    def expect(x: Array) -> Array:
        row = x.shape[-1] if x.ndim else 1  # no --group-size: one group per row
        return fake_quant(x, row, row, 7) if x.size else x

    check_rewritten(checkpoint, out, st, expect)


def test_bf16_exact_checkpoint_gets_the_verdict(st: ModuleType, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "exact.safetensors"
    exact = {f"norm.{i}": rng.standard_normal(64).astype(BF16).astype(np.float32) for i in range(3)}
    st.save_file({**exact, "h": rng.standard_normal(8).astype(np.float16)}, str(path))
    result = pyscan_cli(str(path))
    assert result.returncode == 0, result.stderr
    assert "All 3 F32 tensors are already BF16-exact" in result.stdout
    st.save_file({**exact, "w": np.array([0.1], dtype=np.float32)}, str(path))  # one inexact value
    assert "already BF16-exact" not in pyscan_cli(str(path)).stdout


# ---- hand-written files the library accepts -------------------------------------------------------


def library_reads(content: bytes) -> list[tuple[str, dict[str, Any]]] | None:
    """safetensors.deserialize's view of a file, or None when the library is not installed."""
    try:
        import safetensors
    except ImportError:
        return None
    return list(safetensors.deserialize(content))  # type: ignore[no-untyped-call]  # the stub has no types


F32_4 = np.array([1.0, 0.1, -0.0, np.nan], dtype=np.float32)
VALID_FILES = {
    "no-tensors": raw_file("{}"),
    "only-metadata": raw_file({"__metadata__": {"a": "b"}}),
    "null-metadata": raw_file({"__metadata__": None, "t": entry("U8", [1], 0, 1)}, b"\x07"),
    "padded-header": raw_file('{"t":' + json.dumps(entry("U8", [2], 0, 2)) + "}       ", b"ab"),
    "header-order-is-not-data-order": raw_file(
        {"b": entry("F32", [4], 4, 20), "a": entry("U8", [4], 0, 4), "e": entry("F16", [0, 3], 4, 4)},
        b"xyzw" + F32_4.tobytes(),
    ),
    "unaligned-f32": raw_file(
        {"u": entry("U8", [3], 0, 3), "w": entry("F32", [2, 2], 3, 19)}, b"abc" + F32_4.tobytes()
    ),
    "sub-byte-dtypes": raw_file({"f4": entry("F4", [2, 2], 0, 2), "f6": entry("F6_E2M3", [4], 2, 5)}, bytes(5)),
    "odd-names": raw_file({"": entry("U8", [1], 0, 1), "é\nx" + "y" * 200: entry("BOOL", [1], 1, 2)}, b"\x01\x01"),
}


@pytest.mark.parametrize("content", VALID_FILES.values(), ids=VALID_FILES.keys())
def test_hand_written_files_agree_with_the_library(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "valid.safetensors"
    path.write_bytes(content)
    (n,) = struct.unpack_from("<Q", content)
    with pyscan.open(path) as model:
        mine = {
            t.name: (t.type_name, list(reversed(t.shape)), content[t.offset : t.offset + (t.nbytes or 0)])
            for t in model.tensors
        }
        assert [t.offset for t in model.tensors] == sorted(t.offset for t in model.tensors)
        assert all(8 + n <= t.offset <= len(content) for t in model.tensors)
    library = library_reads(content)
    if library is not None:
        assert mine == {name: (t["dtype"], t["shape"], bytes(t["data"])) for name, t in library}
    for t in pyscan.scan(path).scanned("F32"):  # F32_4: 1.0, 0.1, -0.0, NaN, wherever it lies
        assert (t.count("low16_zero"), t.count("nan"), t.count("zero")) == (3, 1, 1)


def test_unaligned_f32_tensor_rewrites(tmp_path: Path) -> None:
    source, out = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    source.write_bytes(VALID_FILES["unaligned-f32"])
    rewrite(source, out, "--truncate", "bf16")
    with pyscan.open(out) as model:
        got = bits(model.to_numpy("w"))
    want = bits(F32_4) & np.uint32(0xFFFF0000)
    assert np.array_equal(got[:3], want[:3]) and np.isnan(got.view(np.float32)[3])


# ---- (4) malformed files -------------------------------------------------------------------------


def one_u8(**fields: Any) -> bytes:
    """A one-tensor file whose entry has the given fields replaced (or added)."""
    return raw_file({"t": {**entry("U8", [2], 0, 2), **fields}}, b"ab")


# id -> (file, words the reason must hold, whether the safetensors library rejects it too)
MALFORMED: dict[str, tuple[bytes, list[str], bool]] = {
    "header-length-0": (bytes(8) + b"{}", ["header length is 0"], True),
    "header-over-100MB": (raw_file("{}", length=100_000_001), ["100000001", "over the limit"], True),
    "header-length-u64-max": (raw_file("{}", length=2**64 - 1), ["over the limit"], True),
    "header-past-eof": (raw_file("{}", length=50), ["truncated", "claims 50 bytes"], True),
    "invalid-utf8": (raw_file(b'{"\xff": 1}'), ["not valid UTF-8", "byte 10"], True),
    "not-json": (raw_file('{"t": }'), ["not valid JSON"], True),
    "trailing-garbage": (raw_file("{} x"), ["not valid JSON"], True),
    "nul-padding": (raw_file("{}\0\0"), ["not valid JSON"], True),
    "nan-literal": (raw_file('{"t": NaN}'), ["NaN", "not JSON"], True),
    "huge-integer": (one_u8(shape=[int("9" * 30)]), ["30-digit integer"], True),
    "deep-nesting": (raw_file('{"t": ' + "[" * 100_000 + "]" * 100_000 + "}"), ["nests too deeply"], True),
    "duplicate-tensor": (
        raw_file(
            '{"t": ' + json.dumps(entry("U8", [1], 0, 1)) + ', "t": ' + json.dumps(entry("U8", [1], 1, 2)) + "}", b"ab"
        ),
        ["'t' appears twice"],
        False,
    ),
    "duplicate-field": (
        raw_file('{"t": {"dtype": "U8", "dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}', b"a"),
        ["'dtype' appears twice"],
        False,
    ),
    "lone-surrogate-name": (
        raw_file('{"\\ud800": ' + json.dumps(entry("U8", [1], 0, 1)) + "}", b"a"),
        ["surrogate"],
        True,
    ),
    "entry-not-object": (raw_file({"t": [0, 1]}), ["tensor 't' is a JSON array, not an object"], True),
    "missing-field": (raw_file({"t": {"dtype": "U8", "shape": [0]}}), ["has no data_offsets"], True),
    "extra-field": (one_u8(strides=[1]), ["unexpected field 'strides'"], False),
    "dtype-not-string": (one_u8(dtype=8), ["dtype is a JSON number"], True),
    "unknown-dtype": (one_u8(dtype="F12"), ["unknown dtype 'F12'"], True),
    "lowercase-dtype": (one_u8(dtype="u8"), ["unknown dtype 'u8'"], True),
    "shape-not-array": (one_u8(shape=2), ["shape is a JSON number"], True),
    "shape-float": (one_u8(shape=[2.0]), ["shape holds a JSON number, not an integer"], True),
    "shape-bool": (one_u8(shape=[True, 2]), ["shape holds a JSON boolean"], True),
    "negative-dim": (one_u8(shape=[-2]), ["dimension -2 is out of range"], True),
    "dim-over-int64": (raw_file({"t": entry("U8", [2**63, 0], 0, 0)}), ["out of range"], False),
    "65-dims": (raw_file({"t": entry("U8", [1] * 65, 0, 1)}, b"a"), ["65 dimensions"], False),
    "element-count-overflow": (one_u8(shape=[2**40, 2**40, 0], data_offsets=[0, 0]), ["overflows"], True),
    "offsets-three": (one_u8(data_offsets=[0, 1, 2]), ["two integers", "array of 3"], True),
    "offsets-bool": (one_u8(data_offsets=[False, 2]), ["two integers", "boolean"], True),
    "offsets-not-array": (one_u8(data_offsets="0-2"), ["two integers", "a JSON string"], True),
    "negative-offset": (one_u8(data_offsets=[-1, 1]), ["negative"], True),
    "end-before-begin": (one_u8(data_offsets=[2, 0]), ["end before they begin"], True),
    "size-mismatch": (one_u8(shape=[3]), ["hold 2 bytes", "needs 3"], True),
    "sub-byte-partial": (raw_file({"t": entry("F4", [3], 0, 2)}, b"ab"), ["12 bits, not whole bytes"], True),
    "past-eof": (raw_file({"t": entry("F32", [3], 0, 12)}, bytes(8)), ["lies past the end"], True),
    "overlap": (
        raw_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)),
        ["tensor 'b'", "overlap the tensor before it"],
        True,
    ),
    "gap": (
        raw_file({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 8, 12)}, bytes(12)),
        ["tensor 'b'", "gap [4, 8)"],
        True,
    ),
    "gap-at-start": (raw_file({"a": entry("U8", [4], 4, 8)}, bytes(8)), ["gap [0, 4)"], True),
    "trailing-data": (raw_file({"a": entry("U8", [4], 0, 4)}, bytes(8)), ["cover 4 bytes of the 8-byte"], True),
    "data-without-tensors": (raw_file("{}", b"x"), ["cover 0 bytes of the 1-byte"], True),
    "metadata-not-object": (raw_file({"__metadata__": "x"}), ["__metadata__ is a JSON string"], True),
    "metadata-value-not-string": (
        raw_file({"__metadata__": {"k": 1}}),
        ["__metadata__ key 'k' is a JSON number"],
        True,
    ),
    "metadata-duplicate-key": (raw_file('{"__metadata__": {"k": "a", "k": "b"}}'), ["'k' appears twice"], False),
}


@pytest.mark.parametrize(("content", "words", "library_rejects"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_header_is_one_specific_error(
    content: bytes, words: list[str], library_rejects: bool, tmp_path: Path
) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(pyscan.PyscanError) as excinfo:
        pyscan.open(path)
    err = excinfo.value
    assert type(err) is pyscan.PyscanError and err.kind == "format"
    assert err.path == str(path) and str(err).startswith(f"{path}: ")
    for word in words:
        assert word in err.reason, f"{word!r} not in {err.reason!r}"
    assert "\n" not in str(err) and len(str(err)) < 400 + len(str(path))
    if library_rejects and HAVE_LIBRARY:  # the same file is invalid to the reference implementation
        with pytest.raises(Exception):  # noqa: B017 (its error types vary by version)
            library_reads(content)

    result = pyscan_cli(str(path), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"pyscan: {path}: {err.reason}"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ["only 0 bytes"]),
        (b"\x02\0\0\0\0\0\0", ["only 7 bytes"]),
        (raw_file(" []"), ["JSON array, not an object"]),
        (raw_file("\ufeff{}"), ["not valid JSON", "BOM"]),
    ],
    ids=["empty", "7-bytes", "top-level-array", "byte-order-mark"],
)
def test_a_safetensors_name_gets_a_safetensors_error(content: bytes, words: list[str], tmp_path: Path) -> None:
    # Byte 8 is not "{": by its bytes the file is neither format, and by its name it is safetensors
    # (a header with a byte-order mark was "not a GGUF file").
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    for opening in (lambda: parse_safetensors(map_file(path)), lambda: pyscan.open(path)):
        with pytest.raises(pyscan.PyscanError) as excinfo:
            opening()
        assert excinfo.value.path == str(path)
        assert all(word in excinfo.value.reason for word in words), excinfo.value.reason
    other = tmp_path / "bad.bin"
    other.write_bytes(content)
    with pytest.raises(pyscan.PyscanError, match="not a GGUF file"):
        pyscan.open(other)
