"""The library checks its numeric arguments up front, with the command line's limits: a wrong type
is a TypeError (a bool is not a count), a value out of range a ValueError, each naming the argument."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import pyscan_cli
from models import write

import pyscan

OUT_OF_RANGE = [0, -1, 1025, 10**30]
WRONG_TYPE = [True, False, 1.0, "2", [2]]


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    write(path, [("w", np.arange(64, dtype=np.float32).reshape(2, 32), None)])
    return path


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_threads_out_of_range(model: Path, value: int) -> None:
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024"):
        pyscan.scan(model, threads=value)
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024"):
        pyscan.scan_many([str(model)], threads=value)  # at the call, before the first result
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024"):
        pyscan.rewrite_file(model, pyscan.parse_mode(truncate="bf16"), threads=value)


@pytest.mark.parametrize("value", WRONG_TYPE)
def test_threads_of_the_wrong_type(model: Path, value: Any) -> None:
    with pytest.raises(TypeError, match=r"^threads must be an int, not "):
        pyscan.scan(model, threads=value)
    with pytest.raises(TypeError, match=r"^threads must be an int, not "):
        pyscan.scan_many([str(model)], threads=value)
    with pytest.raises(TypeError, match=r"^threads must be an int, not "):
        pyscan.rewrite_file(model, pyscan.parse_mode(truncate="bf16"), threads=value)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError), *((v, TypeError) for v in WRONG_TYPE)])
def test_jobs_checked_at_the_call(value: Any, error: type[Exception]) -> None:
    message = r"^jobs must be at least 1, not " if error is ValueError else r"^jobs must be an int, not "
    with pytest.raises(error, match=message):
        pyscan.scan_many(["x"], jobs=value)  # no next(): the check does not wait for the first file


def test_limits_are_the_command_lines(model: Path) -> None:
    """A threads/jobs the command line refuses (status 2), the library refuses; one it takes, it takes."""
    for value in (0, 1, 2, 1024, 1025):
        refused = pyscan_cli(str(model), "--threads", str(value)).returncode == 2
        try:
            pyscan.scan(model, threads=value)
        except ValueError:
            assert refused, value
        else:
            assert not refused, value
    for value in (0, 1, 2):
        refused = pyscan_cli(str(model), str(model), "--jsonl", "--jobs", str(value)).returncode == 2
        assert refused == (value < 1)
        if refused:
            with pytest.raises(ValueError):
                pyscan.scan_many([str(model)], jobs=value)
        else:
            twin = model.with_name("twin.gguf")  # another file: one file named twice is scanned once
            shutil.copyfile(model, twin)
            assert [r.error for r in pyscan.scan_many([str(model), str(twin)], jobs=value)] == [None, None]


@pytest.mark.parametrize("value", [1.0, 8.0, True, "8", None])
def test_group_size_must_be_an_int(model: Path, value: Any) -> None:
    if value is None:  # one group per row
        assert pyscan.parse_mode(fake_quant="int4", group_size=value).group_size is None
        return
    with pytest.raises(TypeError, match=r"^group_size must be an int, not "):
        pyscan.parse_mode(fake_quant="int4", group_size=value)


def test_group_size_numpy_integer_is_an_int(model: Path, tmp_path: Path) -> None:
    mode = pyscan.parse_mode(fake_quant="int4", group_size=np.int64(8))
    assert mode.group_size == 8 and type(mode.group_size) is int
    pyscan.rewrite_file(model, mode, output=tmp_path / "out.gguf")  # the kernel takes it


@pytest.mark.parametrize("name", ["truncate", "round", "fake_quant"])
def test_mode_names_must_be_strings(name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{name} must be a string, not int"):
        pyscan.parse_mode(**{name: 16})


WRONG_REWRITE_ARGUMENTS = [
    ("mode", "truncate bf16"),
    ("mode", ("truncate", "bf16")),
    ("in_place", "no"),
    ("in_place", 1),
    ("force", "yes"),
    ("durable", 1),
    ("include", 5),
    ("exclude", [b"w"]),
    ("output", 5),
    ("progress", "print"),
]


@pytest.mark.parametrize(("name", "value"), WRONG_REWRITE_ARGUMENTS)
@pytest.mark.parametrize("in_place", [False, True])
def test_rewrite_file_arguments_of_the_wrong_type(model: Path, name: str, value: Any, in_place: bool) -> None:
    """TypeError naming the argument, at the call: the file is not opened (in place: not written)."""
    given: dict[str, Any] = {"mode": pyscan.parse_mode(truncate="bf16"), "in_place": in_place, name: value}
    before, stamp = model.read_bytes(), model.stat().st_mtime_ns
    with pytest.raises(TypeError, match=rf"^{name} must be "):
        pyscan.rewrite_file(model, **given)
    assert model.read_bytes() == before and model.stat().st_mtime_ns == stamp


def test_rewrite_file_path_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"^path must be a str or an os.PathLike, not int"):
        pyscan.rewrite_file(3, pyscan.parse_mode(truncate="bf16"))  # type: ignore[arg-type]  # not fd 3


def test_rewrite_file_one_glob_string_still_works(model: Path) -> None:
    report = pyscan.rewrite_file(model, pyscan.parse_mode(truncate="bf16"), include="w", exclude=["x*"])
    assert report.dry_run
