"""The C loop that writes a rewrite into a file (csrc/pipe.c): piece by piece through a small buffer,
checked and written, against the numpy oracles, at odd lengths, buffer sizes and file offsets."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracles import F32_SPECIALS, change_stats, f32_test_words, fake_quant, keep_mantissa
from test_rewrite_kernels import assert_same_words

from pyscan import native
from pyscan.errors import PyscanError
from pyscan.rewrite import parse_mode

WORDS = np.concatenate([F32_SPECIALS, f32_test_words(3_000, seed=5)])


def write_through(
    tmp_path: Path,
    how: Any,
    words: np.ndarray[Any, Any],
    buffer_bytes: int,
    file_offset: int = 0,
    src_offset: int = 0,
    big_endian: bool = False,
    check: Any = None,
) -> tuple[np.ndarray[Any, Any], Any, bytes]:
    """Rewrite words (stored src_offset bytes into memory) into a new file at file_offset."""
    stored = words.byteswap() if big_endian else words
    source = np.zeros(stored.nbytes + src_offset + 8, dtype=np.uint8)
    source[src_offset : src_offset + stored.nbytes] = stored.view(np.uint8)
    path = tmp_path / "out.bin"
    path.write_bytes(b"\xa5" * (file_offset + stored.nbytes + 8))
    acc = native.new_change_stats()
    fd = os.open(path, os.O_WRONLY)
    try:
        native.rewrite_to_file(
            acc, how, how if check is None else check, source.ctypes.data + src_offset, words.size, big_endian,
            bytearray(buffer_bytes), fd, file_offset, native.WriteLock(), "in.gguf", str(path),
        )  # fmt: skip
    finally:
        os.close(fd)
    data = path.read_bytes()
    got = np.frombuffer(data[file_offset : file_offset + stored.nbytes], dtype=">u4" if big_endian else "<u4")
    return got.astype(np.uint32), acc, data


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 63, 64, 65, 130, WORDS.size])
@pytest.mark.parametrize("buffer_bytes", [4, 64, 260, 1 << 16])
def test_truncate_and_round_match_the_oracle_piece_by_piece(tmp_path: Path, n: int, buffer_bytes: int) -> None:
    words = WORDS[:n]
    for kind in ("truncate", "round"):
        mode = parse_mode(**{kind: "m4"})
        got, acc, data = write_through(tmp_path, mode.kernel_op(1), words, buffer_bytes, file_offset=3, src_offset=1)
        want = keep_mantissa(words, 4, kind == "round")
        assert_same_words(got, want)
        assert (int(acc.changed), float(acc.max_abs_error), float(acc.max_rel_error)) == change_stats(words, got)
        assert data[:3] == b"\xa5" * 3 and data[3 + 4 * n :] == b"\xa5" * 8  # nothing outside the range


@pytest.mark.parametrize("big_endian", [False, True])
def test_fake_quant_writes_whole_rows(tmp_path: Path, big_endian: bool) -> None:
    rows, row_len = 37, 24
    values = np.random.default_rng(3).normal(0, 0.02, rows * row_len).astype(np.float32)
    how = parse_mode(fake_quant="int4", group_size=8).kernel_op(row_len)
    for buffer_bytes in (4 * row_len, 4 * row_len * 3 + 4, 1 << 16):  # 1 row, 3 rows (+ a word), all
        got, acc, _ = write_through(tmp_path, how, values.view(np.uint32), buffer_bytes, 5, 2, big_endian)
        want = fake_quant(values, row_len, 8, 7).view(np.uint32)
        np.testing.assert_array_equal(got, want)
        assert int(acc.changed) == int(np.count_nonzero(want != values.view(np.uint32)))


def test_a_buffer_under_one_row_or_a_partial_row_is_refused(tmp_path: Path) -> None:
    how = parse_mode(fake_quant="int8").kernel_op(16)
    with pytest.raises(PyscanError, match="refused"):
        write_through(tmp_path, how, WORDS[:32], buffer_bytes=60)
    with pytest.raises(PyscanError, match="refused"):
        write_through(tmp_path, how, WORDS[:40], buffer_bytes=1 << 10)


def test_a_piece_that_fails_its_check_is_not_written(tmp_path: Path) -> None:
    words = f32_test_words(100, seed=9)
    truncate_m10 = parse_mode(truncate="m10").kernel_op(1)
    truncate_m3 = parse_mode(truncate="m3").kernel_op(1)  # changes what m10 keeps
    with pytest.raises(PyscanError) as raised:
        write_through(tmp_path, truncate_m10, words, 4096, check=truncate_m3)
    assert str(raised.value) == "in.gguf: a rewritten chunk failed its check (rewriting it again would change it)"
    assert (tmp_path / "out.bin").read_bytes() == b"\xa5" * (400 + 8)  # the one piece was never written


def test_a_full_disk_is_a_one_line_error_naming_the_output() -> None:
    words = f32_test_words(64, seed=1)
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(PyscanError) as raised:
            native.rewrite_to_file(
                native.new_change_stats(), parse_mode(truncate="bf16").kernel_op(1),
                parse_mode(truncate="bf16").kernel_op(1), words.ctypes.data, words.size, False, bytearray(64),
                fd, 0, native.WriteLock(), "in.gguf", "out.gguf",
            )  # fmt: skip
    finally:
        os.close(fd)
    assert str(raised.value) == f"out.gguf: cannot write: {os.strerror(errno.ENOSPC)}"


def test_write_all_writes_every_byte_and_names_the_output_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"\0" * 10)
    fd = os.open(path, os.O_WRONLY)
    try:
        native.write_all(fd, b"abc", 7, native.WriteLock(), str(path))
    finally:
        os.close(fd)
    assert path.read_bytes() == b"\0" * 7 + b"abc"
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(PyscanError, match=f"^{path}: cannot write: {os.strerror(errno.EBADF)}$"):
            native.write_all(fd, b"abc", 0, native.WriteLock(), str(path))
    finally:
        os.close(fd)
