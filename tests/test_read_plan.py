"""The rewrite engine reads a quantized file's F32 tensors without reading the quantized ones between them."""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf
import pytest
from models import norms_between_quants

import pyscan
import pyscan.native
from pyscan import parse_mode, rewrite_file


@pytest.mark.parametrize("how", ["dry-run", "in-place", "output"])
def test_every_rewrite_reads_a_sparse_span_without_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Read-ahead is turned off over the rewritten span first and set back last, whichever way the
    rewrite writes; only the large tensor is fetched ahead of its page faults, in one request each."""
    source = tmp_path / "norms-between-quants.gguf"
    norms_between_quants(source)
    path = tmp_path / "model.gguf"
    shutil.copyfile(source, path)
    calls: list[tuple[str, int, int]] = []
    for name in ("prefetch", "willneed"):
        monkeypatch.setattr(
            pyscan.native.Mapping, name, lambda self, offset, length, name=name: calls.append((name, offset, length))
        )
    monkeypatch.setattr(
        pyscan.native.Mapping,
        "advise",
        lambda self, offset, length, sparse: calls.append(("sparse" if sparse else "sequential", offset, length)),
    )
    output = tmp_path / "out.gguf" if how == "output" else None
    report = rewrite_file(path, parse_mode(truncate="bf16"), output=output, in_place=how == "in-place")

    reader = gguf.GGUFReader(source)
    floats = [t for t in reader.tensors if t.tensor_type.name == "F32"]
    assert len(report.tensors) == len(floats) == 13
    big = next(t for t in floats if t.name == "output_norm.weight")
    first = int(floats[0].data_offset)
    span = (first, int(big.data_offset) + int(big.n_bytes) - first)
    assert calls[0] == ("sparse", *span) and calls[-1] == ("sequential", *span)
    fetched = calls[1:-1]
    for name in ("prefetch", "willneed"):
        assert sum(length for kind, _, length in fetched if kind == name) == big.n_bytes
    for _, start, length in fetched:
        assert big.data_offset <= start and start + length <= big.data_offset + big.n_bytes
    for tensor in reader.tensors:
        if tensor.tensor_type.name == "Q8_0" and tensor.name != "output.weight":  # (it lies past the span)
            assert span[0] <= tensor.data_offset and tensor.data_offset + tensor.n_bytes <= span[0] + span[1]
    written = output if output is not None else path
    assert written.read_bytes() == source.read_bytes()  # ones are exact in BF16: nothing changes
