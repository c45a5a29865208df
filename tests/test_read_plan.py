"""Reading a quantized file's F32 tensors without the quantized ones between them: the rewrite engine's
read plan, and the read requests the kernel is given."""

from __future__ import annotations

import mmap
import os
import resource
import shutil
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


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages of an unmapped file go at once)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def major_faults_reading(pages: memoryview) -> int:
    """This thread's major page faults (disk reads it waited on) while it reads one byte per page."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_majflt
    for at in range(0, len(pages), mmap.PAGESIZE):
        pages[at]
    return resource.getrusage(resource.RUSAGE_THREAD).ru_majflt - before


@pytest.mark.skipif(not hasattr(resource, "RUSAGE_THREAD") or not hasattr(os, "posix_fadvise"), reason="Linux")
def test_willneed_reads_a_whole_large_range_with_read_ahead_off(tmp_path: Path) -> None:
    """Linux reads only the first max(read_ahead_kb, max_sectors_kb) of one MADV_WILLNEED request: a
    range asked for in one request came in page by page, one disk read per fault, with read-ahead off."""
    path = tmp_path / "cold.bin"
    path.write_bytes(os.urandom(COLD_FILE_BYTES))
    evict(path)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as one_request:
        one_request.madvise(mmap.MADV_RANDOM)
        one_request.madvise(mmap.MADV_WILLNEED)
        view = memoryview(one_request)
        faults_after_one_request = major_faults_reading(view)
        view.release()
    if faults_after_one_request == 0:  # tmpfs, or a device that reads 32 MiB in one request
        pytest.skip("one MADV_WILLNEED request reads the whole range here")

    evict(path)
    mapping = pyscan.native.map_file(path)
    mapping.advise(0, COLD_FILE_BYTES, sparse=True)
    mapping.willneed(1000, COLD_FILE_BYTES)  # an unaligned start, and a length past the end
    assert major_faults_reading(memoryview(mapping.buffer)) == 0, f"one request: {faults_after_one_request} faults"
