"""Batches under hostile conditions: corrupt reports, full disks, closed pipes, unreadable folders, SIGTERM.

Faults are real: a tmpfs that is full, /dev/full, a pipe whose reader is gone, a folder its user
cannot read, a SIGTERM to a running job with two worker processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import gguf_bytes as gb
import numpy as np
import pytest
from cli_runner import pyscan_cli as cli
from gguf_bytes import Tensor

NOBODY = 65534


def small_model(path: Path, seed: int = 0) -> Path:
    words = np.random.default_rng(seed).normal(size=4096).astype("<f4")
    path.write_bytes(gb.build_bytes([gb.kv("general.architecture", gb.STRING, "llama")],
                                    [Tensor("w", [64, 64], gb.F32, data=words.tobytes())]))  # fmt: skip
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for i in range(3):
        small_model(folder / f"m{i}.gguf", seed=i)
    return folder


def assert_clean(result: subprocess.CompletedProcess[str], status: int) -> None:
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


# ---- corrupt --resume reports -------------------------------------------------------------------

CORRUPT_LINES = {
    "binary": b"\xff\xfe\x00\x01garbage\x80\n",
    "deep": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "path-list": b'{"path": ["a", "b"], "size": 1, "mtime_ns": 2}\n',
    "path-object": b'{"path": {"x": 1}, "size": 1, "mtime_ns": 2}\n',
    "size-string": b'{"path": "x.gguf", "size": "1", "mtime_ns": 2}\n',
    "not-an-object": b"[1, 2, 3]\n",
}


@pytest.mark.parametrize("kind", sorted(CORRUPT_LINES))
def test_corrupt_report_lines_are_skipped_with_a_warning(models: Path, tmp_path: Path, kind: str) -> None:
    report = tmp_path / "report.jsonl"
    first = cli(str(models), "--jsonl", "--resume", str(report))
    assert_clean(first, 0)
    good = report.read_bytes()
    report.write_bytes(CORRUPT_LINES[kind] + good)
    second = cli(str(models), "--jsonl", "--resume", str(report))
    assert_clean(second, 0)
    assert "skipped 1 line(s) that are not pyscan records (the first: line 1)" in second.stderr
    assert "3 skipped" in second.stderr and second.stdout == ""  # the good records still count
    assert report.read_bytes() == CORRUPT_LINES[kind] + good  # nothing appended, nothing lost


def test_an_overlong_report_line_is_skipped_without_reading_it_whole(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyscan.batch import report_file

    monkeypatch.setattr(report_file, "MAX_LINE_BYTES", 1000)
    report = tmp_path / "report.jsonl"
    record = {"path": str(models / "m0.gguf"), "size": 1, "mtime_ns": 1, "pad": "x" * 5000}
    report.write_text(json.dumps(record) + "\n")
    with pytest.warns(UserWarning, match="skipped 1 line"):
        assert report_file.load_finished(str(report)) == {}


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "folder", "model", "input"])
def test_a_report_that_is_no_report_is_refused(models: Path, tmp_path: Path, target: str) -> None:
    other_model = small_model(tmp_path / "other.safetensors.gguf")
    paths = {
        "fifo": tmp_path / "fifo.jsonl",
        "/dev/zero": Path("/dev/zero"),
        "folder": tmp_path,
        "model": tmp_path / "Y.safetensors",
        "input": models / "m1.gguf",
    }
    report = paths[target]
    if target == "fifo":
        os.mkfifo(report)
    if target == "model":
        report.write_bytes(other_model.read_bytes())
    before = report.read_bytes() if report.is_file() else None
    result = cli(str(models), "--jsonl", "--resume", str(report), timeout=60)  # a FIFO must not hang it
    assert_clean(result, 2)
    assert len(result.stderr.splitlines()) == 1 and str(report) in result.stderr
    if before is not None:
        assert report.read_bytes() == before


# ---- write errors -------------------------------------------------------------------------------


def test_json_to_a_full_device_is_one_line(models: Path) -> None:
    with open("/dev/full", "w") as full:
        for args in ([str(models / "m0.gguf"), "--json"], [str(models / "m0.gguf")], [str(models), "--jsonl"]):
            result = subprocess.run(
                [sys.executable, "-m", "pyscan", *args], stdout=full, stderr=subprocess.PIPE, text=True,
                check=False, timeout=60, cwd=tempfile.gettempdir(),
            )  # fmt: skip
            assert result.returncode == 2, result.stderr
            assert len(result.stderr.splitlines()) == 1 and "No space left on device" in result.stderr


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A real 64 KiB tmpfs (needs root and mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="pyscan-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=False)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def test_report_on_a_full_disk_keeps_whole_lines(models: Path, full_disk: Path) -> None:
    report = full_disk / "report.jsonl"
    result = cli(str(models), "--jsonl", "--resume", str(report))  # each record is ~1 KiB: fits
    assert_clean(result, 0)
    for i in range(3, 12):  # more records than the report's last page has room for
        small_model(models / f"m{i}.gguf", seed=i)
    with open(full_disk / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:  # until ENOSPC: now only the slack of the last pages is left
            filler.write(b"\0" * 4096)
    result = cli(str(models), "--jsonl", "--resume", str(report))
    assert_clean(result, 2)
    assert len(result.stderr.splitlines()) == 1 and "No space left on device" in result.stderr
    lines = report.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # whole records only


def test_text_report_into_a_closed_pipe_is_quiet(models: Path) -> None:
    single = str(models / "m0.gguf")
    for args in ([str(models)], [str(models), "--jsonl"], [single], [single, "--json"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pyscan", *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
                check=False, timeout=60, cwd=tempfile.gettempdir(),
            )  # fmt: skip
        finally:
            os.close(write_end)
        assert (result.returncode, result.stderr) == (0, ""), args


# ---- unreadable folders -------------------------------------------------------------------------

AS_NOBODY = """
import os, sys
import json, concurrent.futures, pyscan.cli.main, pyscan.cli.batch_command, pyscan.scan.scanner  # before the drop
from pyscan.cli.main import main
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
sys.exit(main(sys.argv[1:]))
""".replace("NOBODY", str(NOBODY))


def test_an_unreadable_folder_is_an_error_record() -> None:
    """Run as a real unprivileged user (root drops to nobody after loading Python), so permissions hold."""
    root = Path(tempfile.mkdtemp(prefix="pyscan-perm-"))
    try:
        root.chmod(0o755)
        (root / "open").mkdir(mode=0o755)
        small_model(root / "open" / "a.gguf").chmod(0o644)
        (root / "closed").mkdir()
        small_model(root / "closed" / "hidden.gguf")
        (root / "closed").chmod(0o000)
        result = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, str(root), "--jsonl"], capture_output=True, text=True, check=False,
            timeout=60, cwd="/",
        )  # fmt: skip
        assert_clean(result, 1)
        records = {r["path"]: r for r in map(json.loads, result.stdout.splitlines())}
        closed = str(root / "closed")
        assert set(records) == {closed, str(root / "open" / "a.gguf")}
        assert records[closed]["error_kind"] == "io" and "permission denied" in records[closed]["error"]
        assert "closed" in result.stderr and "1 failed" in result.stderr
    finally:
        (root / "closed").chmod(0o755)
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        root.rmdir()


# ---- SIGTERM --------------------------------------------------------------------------------------


def sparse_model(path: Path, n_words: int) -> None:
    """A valid GGUF whose one F32 tensor is a hole: instant to make, slow enough to scan on the scalar path."""
    layout = gb.build([gb.kv("general.architecture", gb.STRING, "llama")],
                      [Tensor("w", [1024, n_words // 1024], gb.F32, data=b"")], tail=b"")  # fmt: skip
    with open(path, "wb") as f:
        f.write(layout.blob[: layout.offsets[0]])
        f.truncate(layout.offsets[0] + 4 * n_words)


# The command line as installed (entry(): it exits with os._exit), with every file a worker starts logged.
LOG_STARTS = """
import os, sys
from pyscan.batch import runner
real_scan_one = runner.scan_one
def logged(path, *args, **kwargs):
    with open(LOG, "a") as log:
        log.write(path + "\\n")
    return real_scan_one(path, *args, **kwargs)
LOG = sys.argv.pop(1)
runner.scan_one = logged
from pyscan.cli.main import entry
entry()
"""


def test_sigterm_stops_and_reaps_every_worker_and_keeps_what_finished(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(24):
        sparse_model(folder / f"m{i:02d}.gguf", 1 << 25)  # 128 MiB each
    report, starts = tmp_path / "report.jsonl", tmp_path / "starts.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOG_STARTS, str(starts), str(folder), "--jsonl", "--jobs", "2", "--threads", "1",
         "--resume", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
        env={**os.environ, "PYSCAN_ISA": "scalar"}, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # a record is out: the job is under way
        assert first
        proc.send_signal(signal.SIGTERM)
        rest, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == "pyscan: interrupted"
    with pytest.raises(ProcessLookupError):  # no worker outlived the command
        os.killpg(proc.pid, 0)
    printed = [json.loads(line) for line in (first + rest).splitlines()]
    kept = [json.loads(line) for line in report.read_text().splitlines()]
    # Every record that arrived is in the report, whole (the report is written first: it may hold one more).
    assert kept[: len(printed)] == printed and len(kept) - len(printed) <= 1
    started = starts.read_text().splitlines()
    # The workers stopped: no file was started after the signal beyond the ones in flight then.
    assert len(started) <= len(kept) + 4 < 24, (len(started), len(kept))


# ---- --resume identity ----------------------------------------------------------------------------


def test_resume_matches_files_by_resolved_path(models: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    first = subprocess.run(
        [sys.executable, "-m", "pyscan", "./models", "--jsonl", "--resume", str(report)],
        capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert_clean(first, 0)
    assert len(report.read_text().splitlines()) == 3
    for spelling in (str(models), str(models) + "/../models"):
        again = cli(spelling, "--jsonl", "--resume", str(report))
        assert_clean(again, 0)
        assert again.stdout == "" and "3 skipped" in again.stderr
    assert len(report.read_text().splitlines()) == 3  # no duplicates


# The command line with the worker of every file named *crash* dying as if killed.
CRASH_WORKER = """
import os, sys
from pyscan.batch import runner
real_scan_one = runner.scan_one
def crashing(path, *args, **kwargs):
    if "crash" in path:
        os._exit(9)
    return real_scan_one(path, *args, **kwargs)
runner.scan_one = crashing
from pyscan.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_worker_that_dies_still_gives_its_file_a_record(models: Path) -> None:
    small_model(models / "crash.gguf")
    result = subprocess.run(
        [sys.executable, "-c", CRASH_WORKER, str(models), "--jsonl", "--jobs", "2"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    assert_clean(result, 1)
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert sorted(records) == ["crash.gguf", "m0.gguf", "m1.gguf", "m2.gguf"]
    assert records["crash.gguf"]["error_kind"] == "internal" and "worker process died" in records["crash.gguf"]["error"]


def test_a_last_line_that_is_not_a_record_is_kept(models: Path, tmp_path: Path) -> None:
    report = tmp_path / "notes.jsonl"
    report.write_bytes(b"hello\nworld")  # no newline at the end, and not ours: never cut
    result = cli(str(models), "--jsonl", "--resume", str(report))
    assert_clean(result, 0)
    lines = report.read_bytes().split(b"\n")
    assert lines[:2] == [b"hello", b"world"] and all(json.loads(line) for line in lines[2:-1])
