"""A partial download: pyscan says what it is, and --header-only shows the header it does have."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest
from cli_runner import pyscan_cli as cli

import pyscan
from pyscan.demo import write_tinyllama_like


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("download") / "full.gguf"
    write_tinyllama_like(path)
    return path


def cut(full: Path, folder: Path, share: float) -> Path:
    data = full.read_bytes()
    path = folder / f"cut-{share}.gguf"
    path.write_bytes(data[: int(len(data) * share)])
    return path


def reference(full: Path, size: int) -> tuple[list[tuple[str, str, list[int], bool]], list[str]]:
    """gguf-py's view of the full file: (name, type, shape, complete within `size` bytes), and the keys."""
    reader = gguf.GGUFReader(full)
    tensors = [
        (t.name, t.tensor_type.name, [int(d) for d in t.shape], int(t.data_offset) + int(t.n_bytes) <= size)
        for t in reader.tensors
    ]
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    return tensors, keys


@pytest.mark.parametrize("share", [0.2, 0.7])
def test_a_cut_file_is_named_an_incomplete_download(full: Path, tmp_path: Path, share: float) -> None:
    path = cut(full, tmp_path, share)
    tensors, keys = reference(full, path.stat().st_size)
    result = cli(str(path))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    complete = sum(c for *_, c in tensors)
    assert (
        f"the header is complete (GGUF v3, {len(tensors)} tensors, {len(keys)} metadata keys)" in result.stderr
        and f"{complete:,} of {len(tensors)} tensors are complete (the first past the end: tensor" in result.stderr
        and "an incomplete download?" in result.stderr
    ), result.stderr


@pytest.mark.parametrize("share", [0.2, 0.7, 1.0])
def test_header_only_shows_the_header_of_any_file(full: Path, tmp_path: Path, share: float) -> None:
    path = cut(full, tmp_path, share)
    tensors, keys = reference(full, path.stat().st_size)
    result = cli(str(path), "--header-only", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert list(got["metadata"]) == keys
    assert [(t["name"], t["type"], t["shape"], t["complete"]) for t in got["tensors"]] == tensors
    assert got["complete"] == (share == 1.0) and got["n_tensors_complete"] == sum(c for *_, c in tensors)
    assert got["described_size"] <= full.stat().st_size
    text = cli(str(path), "--header-only")
    assert text.returncode == 0 and ("truncated:" in text.stdout) == (share < 1.0)
    assert "general.architecture" in text.stdout and "output_norm.weight" in text.stdout


def test_header_only_from_python(full: Path, tmp_path: Path) -> None:
    path = cut(full, tmp_path, 0.5)
    with pytest.raises(pyscan.PyscanError, match="incomplete download"):
        pyscan.open(path)
    with pyscan.open(path, header_only=True) as model:
        assert len(model.tensors) == 201 and "output_norm.weight" in model.missing
        with pytest.raises(pyscan.PyscanError, match="not in the file"):
            model.to_numpy("output_norm.weight")


def test_a_header_only_model_is_never_read_past_its_end(full: Path, tmp_path: Path) -> None:
    """Scanning, rewriting or diffing a model opened header-only is refused, not a read of foreign memory."""
    from pyscan.diff.compare import diff_files
    from pyscan.scan.scanner import scan_file
    from pyscan.writer import rewrite_model

    path = cut(full, tmp_path, 0.5)
    with pyscan.open(path, header_only=True) as model:
        for attempt in (
            lambda: scan_file(model),
            lambda: diff_files(model, model),
            lambda: rewrite_model(model, pyscan.parse_mode(truncate="bf16"), output=tmp_path / "out.gguf"),
        ):
            with pytest.raises(pyscan.PyscanError, match="not in the file"):
                attempt()
    assert not (tmp_path / "out.gguf").exists()


def test_a_cut_file_of_many_tensors_is_named_at_once(tmp_path: Path) -> None:
    """The message for 60,000 tensors, most of them cut (its first version took minutes: quadratic)."""
    import gguf_bytes as gb
    from gguf_bytes import Tensor

    blob = gb.build_bytes([], [Tensor(f"t{i}", [8], gb.F32, data=bytes(32)) for i in range(60_000)])
    path = tmp_path / "many-cut.gguf"
    path.write_bytes(blob[: len(blob) - 30_000 * 32])
    result = cli(str(path), timeout=60)
    assert result.returncode == 2 and "30,000 of 60,000 tensors are complete" in result.stderr, result.stderr


def test_a_cut_file_of_one_tensor_says_one(tmp_path: Path) -> None:
    import gguf_bytes as gb
    from gguf_bytes import Tensor

    blob = gb.build_bytes([gb.kv("general.name", gb.STRING, "x")], [Tensor("t", [8], gb.F32, data=bytes(32))])
    path = tmp_path / "one-cut.gguf"
    path.write_bytes(blob[:-8])
    result = cli(str(path))
    assert result.returncode == 2, result.stderr
    assert "(GGUF v3, 1 tensor, 1 metadata key)" in result.stderr and "0 of 1 tensor is complete" in result.stderr


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.999])
def test_a_cut_safetensors_download_shows_its_header(tmp_path: Path, keep: float) -> None:
    """The README's "works on a cut download too" holds for safetensors (it was the GGUF only)."""
    import struct

    import numpy as np
    from safetensors.numpy import save_file

    whole = tmp_path / "whole.safetensors"
    save_file({f"t{i}": np.full((16, 4 * (i + 1)), i, np.float32) for i in range(6)}, str(whole))
    data = whole.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])  # the oracle: the JSON header read directly
    size = 8 + length + int((len(data) - 8 - length) * keep)
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:size])
    done = cli(str(path), "--header-only", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ends = {name: 8 + length + entry["data_offsets"][1] for name, entry in header.items()}
    assert (report["size"], report["described_size"], report["complete"]) == (size, max(ends.values()), False)
    assert {t["name"]: t["complete"] for t in report["tensors"]} == {n: end <= size for n, end in ends.items()}
    scan = cli(str(path))
    assert scan.returncode == 2 and "lies past the end" in scan.stderr and "--header-only" in scan.stderr
