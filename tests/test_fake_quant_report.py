"""What the int8/int4 rewrite summary and JSON say about the groups fake quantization leaves unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cli_runner import pyscan_cli as cli
from models import write


def test_summary_and_json_count_the_groups_left_unchanged(tmp_path: Path) -> None:
    """Row 0: four ordinary groups of 8; row 1: two groups too small for a normal BF16 scale, one all zero, one
    ordinary.  int4 (qmax 7) leaves exactly the two tiny groups unchanged (the all-zero one is not counted)."""
    rng = np.random.default_rng(0)
    ordinary = rng.uniform(-1, 1, 32).astype(np.float32)
    tiny = (rng.uniform(-1, 1, 16) * 1e-39).astype(np.float32)  # max |x| / 7 < 2^-126: a subnormal scale
    row1 = np.concatenate([tiny, np.zeros(8, np.float32), rng.uniform(-1, 1, 8).astype(np.float32)])
    source = tmp_path / "m.gguf"
    write(source, [("t.weight", np.stack([ordinary, row1]).astype(np.float32), None)])
    result = cli(str(source), "--fake-quant", "int4", "--group-size", "8", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["skipped_groups"] == 2
    assert report["tensors"][0]["skipped_groups"] == 2
    text = cli(str(source), "--fake-quant", "int4", "--group-size", "8", "--dry-run")
    assert "2 groups left unchanged" in text.stdout, text.stdout
    normal = json.loads(cli(str(source), "--fake-quant", "int8", "--dry-run", "--json").stdout)
    assert normal["skipped_groups"] == 0  # per row, max |x| ~ 1: every row quantized


def test_a_group_longer_than_a_row_is_the_row(tmp_path: Path) -> None:
    """A --group-size past a row (up to past 2^64, the kernel's size_t) quantizes per row: the same bytes as no
    --group-size (whose values tests/test_rewrite_kernels.py holds against numpy)."""
    rng = np.random.default_rng(1)
    source = tmp_path / "m.gguf"
    write(source, [("t.weight", rng.uniform(-1, 1, (3, 40)).astype(np.float32), None)])
    per_row = tmp_path / "per-row.gguf"
    assert cli(str(source), "--fake-quant", "int8", "-o", str(per_row)).returncode == 0
    assert per_row.read_bytes() != source.read_bytes()
    for size in ("40", "41", str(2**64 - 1), str(2**64), str(10**30)):
        out = tmp_path / f"g{size}.gguf"
        result = cli(str(source), "--fake-quant", "int8", "--group-size", size, "-o", str(out))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert out.read_bytes() == per_row.read_bytes(), size
