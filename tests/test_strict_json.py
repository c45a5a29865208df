"""Every --json document is strict JSON: a non-finite number is the string "inf", "-inf" or "nan".

json.dumps wrote them as bare Infinity / NaN, which jq and JSON.parse reject: a rewrite whose
--round fp16 overflows, a header holding a NaN float, a broken candidate's perplexity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from cli_runner import pyscan_cli
from models import write

from pyscan import json_text
from pyscan.eval import metrics


def _refuse(constant: str) -> Any:
    raise AssertionError(f"not strict JSON: {constant}")


def strict(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def spelled(x: float) -> float | str:
    """The oracle's spelling of a float (math, not pyscan)."""
    if math.isnan(x):
        return "nan"
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def test_dumps_spells_every_non_finite_float() -> None:
    document = {"a": math.inf, "b": [1.5, -math.inf, (math.nan, 2)], "c": {"d": np.float64("nan")}, "e": None}
    want = {"a": "inf", "b": [1.5, "-inf", ["nan", 2]], "c": {"d": "nan"}, "e": None}
    assert strict(json_text.dumps(document)) == want
    finite = {"x": [0.1, -2.0, 3], "y": "inf"}
    assert json_text.dumps(finite) == json.dumps(finite)  # the common case: json.dumps itself


def test_rewrite_json_with_an_overflowing_round_fp16(tmp_path: Path) -> None:
    values = np.array([1e5, 1.0, -7e4, 2.0], dtype=np.float32)
    write(tmp_path / "big.gguf", [("blk.0.attn_norm.weight", values, None)])
    result = pyscan_cli(str(tmp_path / "big.gguf"), "--round", "fp16", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    report = strict(result.stdout)
    with np.errstate(over="ignore"):
        error = np.abs(values.astype(np.float16).astype(np.float32) - values)  # numpy: 1e5 -> inf
    assert report["max_abs_error"] == spelled(float(error.max())) == "inf", report
    (tensor,) = [t for t in report["tensors"] if t["name"] == "blk.0.attn_norm.weight"]
    assert tensor["max_abs_error"] == "inf" and tensor["max_rel_error"] == "inf", tensor


def test_block_fake_quant_json_with_a_non_finite_scale(tmp_path: Path) -> None:
    values = np.ones((1, 32), dtype=np.float32)
    values[0, 0] = 1e7  # the F16 scale 1e7 / 127 overflows
    write(tmp_path / "bigq.gguf", [("w", values, None)])
    result = pyscan_cli(str(tmp_path / "bigq.gguf"), "--fake-quant", "q8_0", "-o", str(tmp_path / "out.gguf"), "--json")
    assert result.returncode == 0, result.stderr
    report = strict(result.stdout)
    q8 = gguf.GGMLQuantizationType.Q8_0
    with np.errstate(all="ignore"):
        after = gguf.quants.dequantize(gguf.quants.quantize(values, q8), q8).astype(np.float32)
        error = np.abs(after - values)[~np.isnan(after)]
    want = spelled(float(error.max())) if error.size else None
    assert not isinstance(want, float), want  # the case this test is about: a non-finite figure
    assert report["max_abs_error"] == want, report


def test_header_json_with_non_finite_float_metadata(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(str(tmp_path / "meta.gguf"), "llama")
    writer.add_float32("x.eps", math.nan)
    writer.add_float64("x.scale", math.inf)
    writer.add_float32("x.low", -math.inf)
    writer.add_tensor("t", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = pyscan_cli(str(tmp_path / "meta.gguf"), "--header-only", "--json")
    assert result.returncode == 0, result.stderr
    metadata = strict(result.stdout)["metadata"]
    got = {key: metadata[key]["value"] for key in ("x.eps", "x.scale", "x.low")}
    assert got == {"x.eps": "nan", "x.scale": "inf", "x.low": "-inf"}, metadata


def test_perplexity_past_float64_is_inf_not_an_error() -> None:
    """math.exp raised OverflowError past a mean NLL of ~709.8 (an internal error for a broken model)."""
    nll = np.array([800.0, 900.0])
    with np.errstate(over="ignore"):
        want = float(np.exp(nll.mean()))  # numpy's exp: inf
    assert metrics.perplexity(metrics.TokenMeasures([nll])) == want == math.inf
    assert metrics.perplexity(metrics.TokenMeasures([np.array([2.0, 4.0])])) == math.exp(3.0)
