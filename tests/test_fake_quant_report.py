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
