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
