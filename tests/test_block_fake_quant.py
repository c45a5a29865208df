"""--fake-quant q8_0 (q4_0, q4_1, q5_0, q5_1): F32 tensors through a ggml block format and back, against gguf.quants.

The oracle is gguf.quants itself, called here directly on gguf-py's reading of the input: the
expected output file is the input's bytes with each F32 tensor replaced by that round trip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from cli_runner import pyscan_cli as cli
from models import write

from pyscan.errors import PyscanError
from pyscan.eval.experiment import parse_kind_format
from pyscan.rewrite import parse_mode
from pyscan.writer import rewrite_file

FORMATS = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]


def block_tensors(seed: int = 0) -> list[tuple[str, np.ndarray[Any, Any], Any]]:
    rng = np.random.default_rng(seed)
    norm = rng.normal(1, 0.2, 640).astype(np.float32)
    matrix = (rng.standard_normal((9, 96)) * np.logspace(-3, 3, 96)).astype(np.float32)
    edge = np.zeros(64, dtype=np.float32)
    edge[32:] = np.array([1e-30, -2.0, 65504.0, 7e-8] * 8, dtype=np.float32)  # a zero block, then odd magnitudes
    q8 = rng.integers(0, 256, size=(2, 34), dtype=np.uint8)
    return [
        ("blk.0.attn_norm.weight", norm, None),
        ("matrix.weight", matrix, None),
        ("edge.weight", edge, None),
        ("quant.weight", q8, gguf.GGMLQuantizationType.Q8_0),
    ]


def round_trip(x: np.ndarray[Any, Any], fmt: str, row_len: int) -> np.ndarray[Any, Any]:
    qtype = gguf.GGMLQuantizationType[fmt.upper()]
    rows = x.astype(np.float32).reshape(-1, row_len)
    result: np.ndarray[Any, Any] = gguf.quants.dequantize(gguf.quants.quantize(rows, qtype), qtype)
    return result.astype(np.float32).reshape(-1)


def expected_file(source: Path, fmt: str) -> tuple[bytes, tuple[int, float, float]]:
    """The input's bytes with every F32 tensor through gguf.quants, and the change stats over all of them."""
    reader = gguf.GGUFReader(source)
    order = ">" if reader.endianess == gguf.GGUFEndian.BIG else "<"
    data = bytearray(source.read_bytes())
    before, after = [], []
    for t in reader.tensors:
        if t.tensor_type.name != "F32":
            continue
        x = np.asarray(t.data).astype(np.float32).reshape(-1)
        y = round_trip(x, fmt, int(t.shape[0]))
        data[t.data_offset : t.data_offset + 4 * x.size] = y.astype(f"{order}f4").tobytes()
        before.append(x)
        after.append(y)
    return bytes(data), change_stats(np.concatenate(before), np.concatenate(after))


def change_stats(old: np.ndarray[Any, Any], new: np.ndarray[Any, Any]) -> tuple[int, float, float]:
    """(words changed, max |new - old|, max |new - old| / |old|) in float32 over changed non-NaN inputs.

    A NaN error (0 -> -0 gives 0 / 0) never wins a comparison in the C kernels: nanmax leaves it out too.
    """
    changed = old.view(np.uint32) != new.view(np.uint32)
    tracked = changed & ~np.isnan(old)
    with np.errstate(all="ignore"):
        err = np.abs(new[tracked] - old[tracked])
        rel = err / np.abs(old[tracked])
    top = [float(np.nanmax(v)) if np.any(~np.isnan(v)) else 0.0 for v in (err, rel)]
    return int(changed.sum()), max(top[0], 0.0), max(top[1], 0.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("blocks")
    paths = {"little": folder / "blocks-le.gguf", "big": folder / "blocks-be.gguf", "odd": folder / "odd.gguf"}
    write(paths["little"], block_tensors())
    write(paths["big"], block_tensors(), big_endian=True)
    write(paths["odd"], [*block_tensors(), ("odd.weight", np.ones((2, 33), dtype=np.float32), None)])
    return paths


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("endian", ["little", "big"])
def test_output_is_gguf_quants_round_trip_bit_for_bit(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, endian: str
) -> None:
    monkeypatch.setattr("pyscan.rewrite.engine.PARALLEL_MIN_BYTES", 0)  # threads even for a small model
    monkeypatch.setattr("pyscan.rewrite.engine.CHUNK_BYTES", 1024)  # several chunks of whole rows per tensor
    out = tmp_path / "out.gguf"
    report = rewrite_file(models[endian], parse_mode(fake_quant=fmt), output=out, threads=2)
    want, stats = expected_file(models[endian], fmt)
    assert out.read_bytes() == want
    assert (report.changed, report.max_abs_error, report.max_rel_error) == stats
    assert report.changed > 0


@pytest.mark.parametrize("fmt", ["q8_0", "q4_1"])
def test_dry_run_agrees_with_the_copy_and_in_place_is_refused(
    models: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(models["little"].read_bytes())
    dry = json.loads(cli(str(copy), "--fake-quant", fmt, "--dry-run", "--json").stdout)
    _, stats = expected_file(models["little"], fmt)
    assert dry["mode"] == f"fake-quant {fmt} (blocks of 32)"
    assert (dry["changed"], dry["max_abs_error"], dry["max_rel_error"]) == stats
    # Not idempotent, so an interrupted in-place run could not be finished by re-running it: refused.
    result = cli(str(copy), "--fake-quant", fmt, "--in-place")
    assert result.returncode == 2 and "cannot rewrite in place" in result.stderr and "-o OUT" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert copy.read_bytes() == models["little"].read_bytes()
    with pytest.raises(PyscanError, match="cannot rewrite in place"):
        rewrite_file(copy, parse_mode(fake_quant=fmt), in_place=True)


def test_rows_not_a_multiple_of_32_are_refused_naming_the_tensor(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    result = cli(str(models["odd"]), "--fake-quant", "q8_0", "-o", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "'odd.weight'" in result.stderr and "33" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    excluded = cli(str(models["odd"]), "--fake-quant", "q8_0", "--exclude", "odd.*", "-o", str(out))
    assert excluded.returncode == 0, excluded.stderr


def test_block_format_spellings() -> None:
    assert parse_mode(fake_quant=" Q8_0 ") == parse_kind_format("fake-quant=q8_0")
    with pytest.raises(PyscanError, match="group-size"):
        parse_mode(fake_quant="q4_0", group_size=32)
    with pytest.raises(PyscanError, match="q5_1"):
        parse_mode(fake_quant="q6_k")  # gguf.quants cannot quantize the K types


def test_block_chunks_are_whole_blocks_not_whole_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row longer than a chunk is cut at block boundaries (bounded memory), and the result is the
    same as gguf.quants over the whole tensor."""
    monkeypatch.setattr("pyscan.rewrite.engine.CHUNK_BYTES", 4 * 96)  # 3 blocks per chunk, rows of 320
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 320)).astype(np.float32)
    path, out = tmp_path / "long.gguf", tmp_path / "out.gguf"
    write(path, [("long.weight", x, None)])
    rewrite_file(path, parse_mode(fake_quant="q8_0"), output=out)
    q8 = gguf.GGMLQuantizationType.Q8_0
    want = gguf.quants.dequantize(gguf.quants.quantize(x, q8), q8)
    reader = gguf.GGUFReader(out)
    got = np.asarray(reader.tensors[0].data, dtype=np.float32).reshape(-1)
    assert np.array_equal(got.view(np.uint32), want.astype(np.float32).reshape(-1).view(np.uint32))
