"""The collector is paused while a file's many records are built, never while a kernel reads the
file, and always left as it was found."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
from models import write, write_mixed

import pyscan
from pyscan import native
from pyscan.gc_pause import paused_gc
from pyscan.parser import gguf as gguf_parser
from pyscan.scan import scanner


@pytest.fixture(autouse=True)
def collector_on_after() -> Iterator[None]:
    """Whatever a test does, the next one starts with the collector on."""
    gc.enable()
    yield
    gc.enable()


def test_paused_gc_turns_the_collector_off_inside_and_back_on_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_gc_turns_the_collector_back_on_after_an_exception() -> None:
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_paused_gc_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_pauses_turn_the_collector_on_only_when_the_outer_one_ends() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pauses_overlapping_across_threads_never_leave_the_collector_off() -> None:
    """A check-then-disable without the lock left it off in about 2% of these trials (4 threads)."""

    def pause_often() -> None:
        for _ in range(200):
            with paused_gc():
                pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the pauses too
    try:
        left_off = 0
        for _ in range(200):
            gc.enable()
            threads = [threading.Thread(target=pause_often) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            left_off += not gc.isenabled()
    finally:
        sys.setswitchinterval(interval)
    assert left_off == 0


def recording(seen: list[tuple[str, bool]], step: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """function, noting whether the collector was on at each call."""

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.append((step, gc.isenabled()))
        return function(*args, **kwargs)

    return record


def test_a_scan_pauses_the_collector_for_its_records_and_never_for_a_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse and the records are paused; the count, the byte-order rescan and the truncation
    error read the file (seconds from a disk) with the collector on."""
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.02, 1 << 16).astype(np.float32)
    bf16 = rng.normal(0, 0.3, 4096).astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    bf16[np.abs(bf16) < 2**-12] = 0.25  # a tiny w would round in w + 1
    plus_one = bf16 + np.float32(1.0)  # "bf16-plus-one": BF16 norms stored as w + 1, as Gemma's are
    path = tmp_path / "kernels.gguf"
    write(path, [("swapped.weight", weights.byteswap(), None), ("norm.weight", plus_one, None)])
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr("pyscan.parser.opener.parse_gguf", recording(seen, "parse", gguf_parser.parse_gguf))
    monkeypatch.setattr(scanner, "TensorReport", recording(seen, "record", scanner.TensorReport))
    for kernel in ("count_into", "count_batch", "transform_into"):
        monkeypatch.setattr(native, kernel, recording(seen, kernel, getattr(native, kernel)))

    report = pyscan.scan(path, threads=1)
    assert [t.name for t in report.tensors if t.byte_order_suspect] == ["swapped.weight"]
    assert report.plus_one_max_abs_error is not None  # so the truncation kernel ran
    steps = {step for step, _ in seen}
    assert {"parse", "record", "transform_into"} <= steps and steps & {"count_into", "count_batch"}
    assert [(step, on) for step, on in seen if on != (step not in ("parse", "record"))] == []
    assert gc.isenabled()


def test_a_safetensors_parse_runs_with_the_collector_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyscan.parser import safetensors as safetensors_parser

    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file({"w": np.ones(8, dtype=np.float32)}, str(path))
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        safetensors_parser, "parse_safetensors", recording(seen, "parse", safetensors_parser.parse_safetensors)
    )
    with pyscan.open(path) as model:
        assert [t.name for t in model.tensors] == ["w"]
    assert seen == [("parse", False)]
    assert gc.isenabled()


def test_a_file_that_fails_to_parse_leaves_the_collector_on(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    write_mixed(path)
    path.write_bytes(path.read_bytes()[:100])  # cut inside the header
    with pytest.raises(pyscan.PyscanError):
        pyscan.scan(path)
    assert gc.isenabled()


def test_a_scan_that_fails_while_paused_leaves_the_collector_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mixed.gguf"
    write_mixed(path)

    def failing_record(*args: Any) -> Any:
        assert not gc.isenabled()  # so this does fail inside the pause
        raise MemoryError("no room for the record")

    monkeypatch.setattr(scanner, "TensorReport", failing_record)
    with pytest.raises(MemoryError, match="no room"):
        pyscan.scan(path)
    assert gc.isenabled()
