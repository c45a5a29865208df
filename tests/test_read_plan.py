"""Reading a quantized file's F32 tensors without the quantized ones between them: the rewrite engine's
read plan, and the read requests the kernel is given."""

from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import sys
from pathlib import Path

import gguf
import pytest
from models import norms_between_quants

import pyscan.native
from pyscan import parse_mode, rewrite_file


@pytest.mark.parametrize("how", ["dry-run", "in-place", "output"])
def test_every_rewrite_reads_a_sparse_span_without_read_ahead(
    tmp_path: Path, mapping_calls: list[tuple[str, int, int]], how: str
) -> None:
    """Read-ahead is turned off over the rewritten span first and set back last, whichever way the
    rewrite writes; only the large tensor is fetched ahead of its page faults, in one call each."""
    source = tmp_path / "norms-between-quants.gguf"
    norms_between_quants(source)
    path = tmp_path / "model.gguf"
    shutil.copyfile(source, path)
    output = tmp_path / "out.gguf" if how == "output" else None
    report = rewrite_file(path, parse_mode(truncate="bf16"), output=output, in_place=how == "in-place")

    reader = gguf.GGUFReader(source)
    floats = [t for t in reader.tensors if t.tensor_type.name == "F32"]
    assert len(report.tensors) == len(floats) == 13
    big = next(t for t in floats if t.name == "output_norm.weight")
    first = int(floats[0].data_offset)
    span = (first, int(big.data_offset) + int(big.n_bytes) - first)
    calls = mapping_calls
    assert calls[0] == ("sparse", *span) and calls[-1] == ("sequential", *span)
    fetched = calls[1:-1]
    for name in ("prefetch", "willneed"):
        assert sum(length for kind, _, length in fetched if kind == name) == big.n_bytes
    for _, start, length in fetched:
        assert big.data_offset <= start and start + length <= big.data_offset + big.n_bytes
    written = output if output is not None else path
    assert written.read_bytes() == source.read_bytes()  # ones are exact in BF16: nothing changes


COLD_FILE_BYTES = 32 << 20  # four times this VM's 8 MiB cap on one request; 256 of the default 128 KiB
CACHESTAT_SYSCALL = 451  # cachestat(2), Linux 6.5; the same number on every architecture


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("cache", "dirty", "writeback", "evicted", "recently_evicted")]


def cached_pages(path: Path) -> int | None:
    """The file's pages in the page cache, read or still being read (cachestat(2)); None where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    whole, stat = _CachestatRange(0, 0), _Cachestat()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(CACHESTAT_SYSCALL, fd, ctypes.byref(whole), ctypes.byref(stat), 0) != 0:
            return None
    finally:
        os.close(fd)
    return int(stat.cache)


def evict(path: Path) -> bool:
    """Drop the file's pages from the page cache; whether none is left (tmpfs keeps them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return cached_pages(path) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cachestat(2) and MADV_WILLNEED's cap are Linux's")
def test_willneed_reads_a_whole_large_range_with_read_ahead_off(tmp_path: Path) -> None:
    """Linux reads only the first max(read_ahead_kb, max_sectors_kb) of one MADV_WILLNEED request: a
    range asked for in one request came in page by page, one disk read per fault, with read-ahead off.
    cachestat counts the pages the requests put in the cache as they return, before their reads end.
    (Where the cap is exactly 128 KiB, the steps must also be page-aligned; this VM's 8 MiB cap cannot
    show that.)"""
    path = tmp_path / "cold.bin"
    path.write_bytes(os.urandom(COLD_FILE_BYTES))
    pages = COLD_FILE_BYTES // mmap.PAGESIZE
    if cached_pages(path) is None:
        pytest.skip("no cachestat(2) (Linux 6.5)")
    if not evict(path):
        pytest.skip("the file's pages cannot be dropped from the page cache here (tmpfs?)")
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as one_request:
        one_request.madvise(mmap.MADV_RANDOM)
        one_request.madvise(mmap.MADV_WILLNEED)
        after_one_request = cached_pages(path)
    if after_one_request == pages:
        pytest.skip("one MADV_WILLNEED request reads the whole range on this device")

    assert evict(path)
    mapping = pyscan.native.map_file(path)
    mapping.advise(0, COLD_FILE_BYTES, sparse=True)
    mapping.willneed(1000, COLD_FILE_BYTES)  # an unaligned start, and a length past the end
    assert cached_pages(path) == pages, f"one request put {after_one_request} of {pages} pages in the cache"
