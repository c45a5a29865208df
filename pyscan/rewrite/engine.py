"""Run a rewrite mode over F32 tensors, chunk by chunk and thread by thread.

Three destinations: none (a dry run), the tensor itself (in place, through a
writable mapping), or an output file: each chunk goes through a per-thread
buffer of PIPE_BYTES in C (native.rewrite_to_file: rewrite a piece, check it,
pwrite it while it is still in cache), so the data is read once, from the
input's mapping, and written once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pyscan import native
from pyscan.errors import PyscanError
from pyscan.parallel import capped_threads, map_threaded
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.read_plan import ReadPlan
from pyscan.rewrite.modes import RewriteMode
from pyscan.selection import nothing_selected, select

CHUNK_BYTES = 4 << 20  # one job of a thread (a Python call); the C loop cuts it into PIPE_BYTES pieces
PIPE_BYTES = 256 << 10  # the output buffer: pwrite from a 4 MiB one was several times slower (see csrc/pipe.c)
PARALLEL_MIN_BYTES = 32 << 20


class FileSink(NamedTuple):
    """Where rewrite_tensors writes: into fd, at the tensors' own offsets."""

    fd: int
    path: str  # named in write errors
    lock: native.WriteLock  # one pwrite at a time: threads share the file
    after_write: Callable[[int, int], None] | None = None  # (offset, length) of each written chunk


class TensorChange(NamedTuple):
    """What a rewrite changed in one tensor."""

    name: str
    n_elements: int
    changed: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    skipped_groups: int = 0  # int8/int4: groups left unchanged although not all zero (see pyscan.h)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class RewriteReport(NamedTuple):
    """The whole rewrite: where from, where to, and per-tensor changes."""

    path: str
    output: str | None  # None for a dry run or in place
    mode: str
    in_place: bool
    dry_run: bool
    tensors: list[TensorChange]

    @property
    def changed(self) -> int:
        return sum(t.changed for t in self.tensors)

    @property
    def n_elements(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def max_abs_error(self) -> float:
        return max((t.max_abs_error for t in self.tensors), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    @property
    def skipped_groups(self) -> int:
        return sum(t.skipped_groups for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "output": self.output, "mode": self.mode, "in_place": self.in_place,
            "dry_run": self.dry_run, "n_tensors": len(self.tensors),
            "n_tensors_changed": sum(1 for t in self.tensors if t.changed), "n_elements": self.n_elements,
            "changed": self.changed, "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
            "skipped_groups": self.skipped_groups, "tensors": [t.to_dict() for t in self.tensors],
        }  # fmt: skip


def select_targets(gguf: ModelFile, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[TensorInfo]:
    """The F32 tensors a rewrite touches: those the globs choose."""
    chosen = select((t.name for t in gguf.tensors), include, exclude)
    targets = [t for t in gguf.tensors if t.type_name == "F32" and t.name in chosen]
    if not targets and (include or exclude):
        raise nothing_selected(gguf.path, include, exclude, "F32 tensor")
    return targets


def _chunks(info: TensorInfo, mode: RewriteMode) -> list[tuple[int, int]]:
    """(first word, words) pieces of a tensor; int fake-quant pieces hold whole rows, block formats
    whole blocks (a row of 4 GB must not become one chunk)."""
    if info.n_elements == 0:  # also covers a row length of 0
        return []
    row_len = info.shape[0] if info.shape else 1
    step = max(1, CHUNK_BYTES // 4)
    if mode.is_block_format:  # blocks are independent, and rows hold whole blocks (check_rows)
        from pyscan.rewrite.blocks import BLOCK_SIZE

        step = max(1, step // BLOCK_SIZE) * BLOCK_SIZE
    elif mode.is_fake_quant:
        step = max(1, step // row_len) * row_len
    return [(first, min(step, info.n_elements - first)) for first in range(0, info.n_elements, step)]


def rewrite_tensors(
    gguf: ModelFile,
    targets: Sequence[TensorInfo],
    mode: RewriteMode,
    *,
    sink: FileSink | None = None,
    in_place: bool = False,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[TensorChange]:
    """Apply mode to the targets: into sink, in place, or (neither) as a dry run.

    With a sink, each rewritten piece is made in a small per-thread buffer, checked there (the
    mode run over it again changes nothing: every mode but the block formats is idempotent, so
    this catches a faulty kernel, without re-reading the output), and written into sink.fd.
    progress, if given, is called with the bytes of each chunk as it completes.
    """
    if in_place and not gguf.mapping.writable:
        raise PyscanError(gguf.path, "in-place rewrite needs a writable mapping", "usage")
    if mode.is_block_format:
        from pyscan.rewrite.blocks import check_rows

        if in_place:  # only idempotent modes may: an interrupted run is finished by running it again
            raise PyscanError(
                gguf.path,
                f"{mode} cannot rewrite in place: a round trip through a block format is not guaranteed to be "
                "idempotent, so an interrupted run could not be finished by running it again; write a copy "
                "(-o OUT)",
                "usage",
            )
        check_rows(gguf.path, targets, mode.target)
    base, swap = gguf.mapping.address, gguf.swap
    kernel_ops = {} if mode.is_block_format or sink is None else {
        row_len: mode.kernel_op(row_len) for row_len in {t.shape[0] if t.shape else 1 for t in targets}
    }  # fmt: skip
    jobs = [(index, first, n) for index, info in enumerate(targets) for first, n in _chunks(info, mode)]
    buffers = threading.local()

    def run(job: tuple[int, int, int]) -> tuple[int, Any, int]:
        index, first, n = job
        info = targets[index]
        acc = native.new_change_stats()
        offset = info.offset + 4 * first
        src = base + offset
        row_len = info.shape[0] if info.shape else 1
        try:
            plan.fetch(offset, 4 * n)
            if sink is None:
                mode.run(acc, src, src if in_place else None, n, row_len, swap, gguf.path)
                return index, acc, 4 * n
            # Block formats: a whole chunk at once through gguf.quants, unchecked (not idempotent).
            wanted = 4 * n if mode.is_block_format else max(PIPE_BYTES, 4 * row_len if mode.is_fake_quant else 0)
            buffer = getattr(buffers, "data", None)
            if buffer is None or len(buffer) < wanted:
                buffer = buffers.data = bytearray(max(wanted, PIPE_BYTES))
            if mode.is_block_format:
                address = int(native.ffi.cast("uintptr_t", native.ffi.from_buffer(buffer)))
                mode.run(acc, src, address, n, row_len, swap, gguf.path)
                native.write_all(sink.fd, memoryview(buffer)[: 4 * n], offset, sink.lock, sink.path)
            else:
                how = kernel_ops[row_len]
                native.rewrite_to_file(
                    acc, how, how, src, n, swap, buffer, sink.fd, offset, sink.lock, gguf.path, sink.path
                )
            if sink.after_write is not None:
                sink.after_write(offset, 4 * n)
            return index, acc, 4 * n
        finally:
            gguf.mapping.release(offset, 4 * n)  # done with it: bound the resident set

    changes = [TensorChange(t.name, t.n_elements) for t in targets]
    total = sum(4 * t.n_elements for t in targets)
    workers = capped_threads(threads)
    span = (min(t.offset for t in targets), max(t.offset + 4 * t.n_elements for t in targets)) if targets else (0, 0)
    with ReadPlan(gguf.mapping, *span, total) as plan:  # the norms of a quantized file: read only them
        if workers <= 1 or total < PARALLEL_MIN_BYTES:
            _merge(changes, map(run, jobs), progress)
        else:
            with map_threaded(run, jobs, workers) as results:
                _merge(changes, results, progress)
    return changes


def _merge(changes: list[TensorChange], results: Any, progress: Callable[[int], None] | None) -> None:
    for index, acc, nbytes in results:
        if progress is not None:
            progress(nbytes)
        change = changes[index]
        changes[index] = change._replace(
            changed=change.changed + int(acc.changed),
            max_abs_error=max(change.max_abs_error, float(acc.max_abs_error)),
            max_rel_error=max(change.max_rel_error, float(acc.max_rel_error)),
            skipped_groups=change.skipped_groups + int(acc.skipped_groups),
        )
