"""report_json (the --json text) against the standard library: json.dumps(report.to_dict())."""

from __future__ import annotations

import json
from pathlib import Path

import gguf_bytes as gb
import numpy as np
import pytest
from models import mixed_tensors, write

import pyscan
from pyscan.scan.report import FileReport, TensorReport
from pyscan.scan.report_json import report_json


def test_a_scanned_file_of_every_kind_of_tensor(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gguf"
    write(path, mixed_tensors(), metadata={"general.name": 'quote " \\ backslash, \u00e9 and \x07 bell'})
    report = pyscan.scan(path)
    assert report_json(report) == json.dumps(report.to_dict())


def test_names_that_need_escaping_and_unscanned_tensors(tmp_path: Path) -> None:
    names = ['a"b', "back\\slash", "tab\there", "\u202eevil", "caf\u00e9", "\U0001f600", "%d %s %%"]
    tensors = [gb.Tensor(name.encode(), [4]) for name in names]
    tensors.insert(0, gb.Tensor(b"unknown", [4], type_id=99))  # unknown type: nbytes None, not scanned
    path = tmp_path / "names.gguf"
    path.write_bytes(gb.build_bytes([], tensors))
    report = pyscan.scan(path)
    assert report.tensors[0].nbytes is None
    assert report_json(report) == json.dumps(report.to_dict())


@pytest.mark.parametrize("counts", [None, {}, {"x%d": 1, '"': 2}, {"bf16_exact": 3}])
def test_hand_made_reports(counts: dict[str, int] | None) -> None:
    report = FileReport("p\u00e9", 1, 3, "little", 32, 0, None, "n", "scalar")
    report.tensors.append(TensorReport("t", "F16", (), 1, 0, 2, counts, byte_order_suspect=True))
    report.tensors.append(TensorReport("u", "Q4_K", (256, 2), 512, 64, None))
    assert report_json(report) == json.dumps(report.to_dict())
    report.tensors.clear()
    assert report_json(report) == json.dumps(report.to_dict())


def test_floats_keep_their_json_form(tmp_path: Path) -> None:
    path = tmp_path / "f.gguf"
    write(path, [("w", np.array([1.5, -0.0, np.inf], np.float32), None)])
    report = pyscan.scan(path)
    assert json.loads(report_json(report)) == report.to_dict()
