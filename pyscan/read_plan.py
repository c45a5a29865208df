"""Read a mapped file's wanted ranges from a cold cache without reading what lies between them.

pyscan_map_open advises the whole mapping for front-to-back reading, so each page fault reads
ahead (read_ahead_kb: 8 MiB on this VM's disk, 128 KiB by default).  The float tensors of a
quantized file are a small share of the span they lie in: the 45 F32 norms of a 668 MB Q4_K_M file
span 600 MB of quantized weights, and read-ahead from each norm read 201 MB of them.  A sparse plan
turns read-ahead off over the span while it is read (MADV_RANDOM), lets small ranges fault in page
by page, and reads each large range with explicit requests (MADV_WILLNEED), so only the wanted
bytes come off the disk (see README, "Performance").
"""

from __future__ import annotations

from types import TracebackType

from pyscan.native import Mapping

# A span is sparse when more than half of it is unwanted, and that half is large enough (below
# 1 MiB, read-ahead costs less than the two madvise calls, which split the mapping's VMA).
SPARSE_SPAN_PER_WANTED_BYTE = 2
SPARSE_MIN_GAP_BYTES = 1 << 20
PREFETCH_MIN_BYTES = 64 << 10  # below this, a madvise call costs more than the page faults it saves


def is_sparse(span: int, wanted: int) -> bool:
    """Whether reading `wanted` bytes scattered over `span` should go without read-ahead."""
    return span - wanted >= SPARSE_MIN_GAP_BYTES and span > SPARSE_SPAN_PER_WANTED_BYTE * wanted


class ReadPlan:
    """How to read ranges of one mapping that lie in [start, stop) and add up to `wanted` bytes.

        with ReadPlan(mapping, start, stop, wanted) as plan:
            for offset, length in ranges:
                plan.fetch(offset, length)
                ...read it...
                mapping.release(offset, length)

    Leaving the block, however it is left, restores the mapping's front-to-back advice.
    """

    __slots__ = ("mapping", "start", "stop", "sparse")

    def __init__(self, mapping: Mapping, start: int, stop: int, wanted: int) -> None:
        self.mapping, self.start, self.stop = mapping, start, stop
        self.sparse = is_sparse(stop - start, wanted)

    def __enter__(self) -> ReadPlan:
        if self.sparse:
            self.mapping.advise(self.start, self.stop - self.start, sparse=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.sparse:
            self.mapping.advise(self.start, self.stop - self.start, sparse=False)

    def fetch(self, offset: int, length: int, wanted: int | None = None) -> None:
        """Bring [offset, offset + length) in before it is read, where one call beats page faults.

        wanted: the bytes of it that are read, if not all (a run of small tensors spans the
        tensors between them); a sparse range is left to its page faults (in a sparse plan they
        read only it; in a dense one, read-ahead over its gaps is bounded per scan: the plan's span
        has no more unwanted bytes than max(wanted bytes, SPARSE_MIN_GAP_BYTES)).
        """
        if length < PREFETCH_MIN_BYTES or is_sparse(length, length if wanted is None else wanted):
            return
        if self.sparse:  # read-ahead is off here: without this, every page would be a disk read
            self.mapping.willneed(offset, length)
        self.mapping.prefetch(offset, length)
