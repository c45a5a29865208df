"""Scan a GGUF file: hand each F32/F16/BF16 tensor's bytes to the kernels and collect counts.

Large tensors are cut into chunks so that threads can share them; the
kernels run without the GIL, and counts are sums, so chunks add up exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pyscan import native
from pyscan.parallel import capped_threads, map_threaded
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.parser.opener import open_model
from pyscan.scan.byte_order import looks_byte_swapped
from pyscan.scan.report import COUNTS_BY_TYPE, SCANNED_TYPES, FileReport, TensorReport
from pyscan.scan.verdict import truncation_error
from pyscan.selection import nothing_selected, select

ELEMENT_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
CHUNK_BYTES = 16 << 20  # big enough to amortize a call, small enough to balance threads
PARALLEL_MIN_BYTES = 64 << 20  # below this, threads cost more than they save
PREFETCH_MIN_BYTES = 64 << 10  # below this, a madvise call costs more than the page faults it saves


Progress = Callable[[int], None]  # called with the bytes just processed


def scan(
    path: str | os.PathLike[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
    progress: Progress | None = None,
) -> FileReport:
    """Parse and scan one GGUF file.  Raises PyscanError for an invalid file."""
    with open_model(path) as gguf:
        return scan_file(gguf, include, exclude, threads, progress)


def scanned_bytes(gguf: ModelFile, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> int:
    """How many bytes a scan with these globs reads (the total for a progress bar)."""
    return sum(t.nbytes or 0 for t in _targets(gguf, include, exclude))


def _targets(gguf: ModelFile, include: Sequence[str], exclude: Sequence[str]) -> list[TensorInfo]:
    scanned = [t for t in gguf.tensors if t.type_name in SCANNED_TYPES]
    if not include and not exclude:
        return scanned
    chosen = select((t.name for t in gguf.tensors), include, exclude)
    if not chosen:
        raise nothing_selected(gguf.path, include, exclude)
    return [t for t in scanned if t.name in chosen]


def scan_file(
    gguf: ModelFile,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
    progress: Progress | None = None,
) -> FileReport:
    gguf.require_data()
    targets = _targets(gguf, include, exclude)
    counts = count_tensors(gguf, targets, capped_threads(threads), progress)
    report = FileReport(
        path=gguf.path,
        size=gguf.size,
        version=gguf.version,
        endianness=gguf.byte_order,
        alignment=gguf.alignment,
        n_kv=gguf.n_kv,
        architecture=_text(gguf.value("general.architecture")),
        model_name=_text(gguf.value("general.name")),
        kernel=native.current_isa(),
        format=gguf.format,
    )
    for info in gguf.tensors:
        tensor_counts = counts.get(info.name)
        # (fewer than 16 values never look swapped: skip the call, 200,000 tensors may be tiny)
        swapped = tensor_counts is not None and info.n_elements >= 16 and looks_byte_swapped(gguf, info, tensor_counts)
        report.tensors.append(
            TensorReport(
                info.name, info.type_name, info.shape, info.n_elements, info.offset, info.nbytes, tensor_counts, swapped
            )
        )
    suspects = [t.name for t in report.tensors if t.byte_order_suspect]
    if suspects:
        other = "little" if gguf.byte_order == "big" else "big"
        report.warnings.append(
            f"{len(suspects)} of {len(report.scanned())} float tensors read far more plausibly as {other}-endian "
            f"than as the {gguf.byte_order}-endian the header declares (e.g. {suspects[0]}): the file's data may "
            "be in the wrong byte order, and their counts do not describe real weights"
        )
    report.plus_one_max_abs_error = truncation_error(gguf, report.tensors)  # the verdict's max |error|
    return report


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def count_tensors(
    gguf: ModelFile, tensors: Sequence[TensorInfo], threads: int, progress: Progress | None = None
) -> dict[str, dict[str, int]]:
    """Run the kernels over the tensors; name -> the counts that apply to its type."""
    mapping, swap = gguf.mapping, gguf.swap
    jobs: list[tuple[int, int, int, int, int]] = []  # (tensor index, dtype, offset, elements, bytes)
    for index, info in enumerate(tensors):
        width = ELEMENT_BYTES[info.type_name]
        step = max(1, CHUNK_BYTES // width)
        for first in range(0, info.n_elements, step):
            n = min(step, info.n_elements - first)
            jobs.append((index, native.KERNEL_DTYPES[info.type_name], info.offset + first * width, n, n * width))

    def run(job: tuple[int, int, int, int, int]) -> tuple[int, Any, int]:
        index, dtype, offset, n, nbytes = job
        acc = native.new_counts()
        mapping.prefetch(offset, nbytes)
        native.count_into(acc, dtype, mapping.address + offset, n, swap, path=gguf.path)
        mapping.release(offset, nbytes)  # scanned once: keep the resident set small
        return index, acc, nbytes

    totals = native.new_counts(len(tensors))  # one struct per tensor, in one allocation
    total_bytes = sum(info.nbytes or 0 for info in tensors)
    if threads <= 1 or total_bytes < PARALLEL_MIN_BYTES or len(jobs) < 2:
        # One thread: count straight into each tensor's totals, no per-chunk struct to merge, and
        # small tensors in batches of one C call (a Python loop over 200,000 tensors costs ~1 s).
        batch: list[tuple[int, int, int, int, int]] = []
        batch_start = batch_bytes = 0

        def flush() -> None:
            nonlocal batch_bytes
            if batch:
                native.count_batch(totals, batch, mapping.address, swap, path=gguf.path)
                end = batch[-1][2] + batch[-1][4]
                mapping.release(batch_start, end - batch_start)
                if progress is not None:
                    progress(batch_bytes)
                batch.clear()
                batch_bytes = 0

        for job in jobs:
            index, dtype, offset, n, nbytes = job
            if nbytes < PREFETCH_MIN_BYTES:
                if not batch:
                    batch_start = offset
                batch.append(job)
                batch_bytes += nbytes
                if batch_bytes >= CHUNK_BYTES:
                    flush()
                continue
            flush()
            mapping.prefetch(offset, nbytes)
            native.count_into(totals + index, dtype, mapping.address + offset, n, swap, path=gguf.path)
            mapping.release(offset, nbytes)
            if progress is not None:
                progress(nbytes)
        flush()
    else:
        with map_threaded(run, jobs, threads) as results:
            _add_counts(totals, results, progress)

    result: dict[str, dict[str, int]] = {}
    for info, raw in zip(tensors, native.counts_as_dicts(totals, len(tensors)), strict=True):
        if info.type_name == "F32":
            raw["bf16_exact"] = raw["low16_zero"]
        elif info.type_name == "BF16":
            raw["bf16_exact"] = info.n_elements
        result[info.name] = {key: raw[key] for key in COUNTS_BY_TYPE[info.type_name]}
    return result


def _add_counts(totals: Any, results: Iterable[tuple[int, Any, int]], progress: Progress | None) -> None:
    for index, acc, nbytes in results:
        if progress is not None:
            progress(nbytes)
        total = totals[index]
        for name in native.COUNT_FIELDS:
            setattr(total, name, getattr(total, name) + getattr(acc, name))
