"""The compiled half of pyscan: kernel paths, counting, and file mappings.

``PYSCAN_ISA`` (scalar, sse2, avx2, avx512, neon) forces one kernel path for
the whole process; otherwise the best path this CPU supports is used.
"""

from __future__ import annotations

import array
import errno
import os
import weakref
from collections.abc import Iterator
from typing import Any

from pyscan._native import ffi as _ffi
from pyscan._native import lib as _lib
from pyscan.errors import FileShrankError, PyscanError

ffi: Any = _ffi
lib: Any = _lib

F32, F16, BF16 = lib.PYSCAN_F32, lib.PYSCAN_F16, lib.PYSCAN_BF16
KERNEL_DTYPES = {"F32": F32, "F16": F16, "BF16": BF16}  # tensor type name -> the kernels' dtype

ISA_NAMES: tuple[str, ...] = tuple(ffi.string(lib.pyscan_isa_name(i)).decode() for i in range(lib.PYSCAN_ISA_COUNT))

COUNT_FIELDS: tuple[str, ...] = (
    "words",
    "low16_zero",
    "fp16_exact",
    "bf16_exact",
    "nan",
    "inf",
    "zero",
    "subnormal",
    "low16_zero_minus_one",
)


def available_isas() -> list[str]:
    """Names of the kernel paths this build has and this CPU can run."""
    return [name for i, name in enumerate(ISA_NAMES) if lib.pyscan_isa_available(i)]


def _isa_index_of(name: str, origin: str) -> int:
    """The index of a kernel path by name; a PyscanError if unknown or unavailable here."""
    name = name.strip().lower()
    if name not in ISA_NAMES:
        raise PyscanError(None, f"{origin}{name!r} is not a kernel path (choose from {', '.join(ISA_NAMES)})", "usage")
    isa = ISA_NAMES.index(name)
    if not lib.pyscan_isa_available(isa):
        raise PyscanError(
            None, f"{origin}{name!r} is not available on this CPU (available: {', '.join(available_isas())})", "usage"
        )
    return isa


_current_isa: int | None = None


def select_isa(name: str | None) -> str:
    """Use the named kernel path from now on (None: PYSCAN_ISA, else the best one); returns its name."""
    global _current_isa
    forced = os.environ.get("PYSCAN_ISA", "").strip() if name is None else name
    if forced:
        _current_isa = _isa_index_of(forced, "PYSCAN_ISA=" if name is None else "kernel path ")
    else:
        _current_isa = int(lib.pyscan_isa_default())
    return ISA_NAMES[_current_isa]


def current_isa() -> str:
    """The kernel path in use: PYSCAN_ISA if set, else the best available one."""
    return ISA_NAMES[_isa_index()]


def _isa_index() -> int:
    if _current_isa is None:
        select_isa(None)
    assert _current_isa is not None
    return _current_isa


FAULT = lib.PYSCAN_FAULT  # -2: the kernel's memory vanished: a mapped file shrank (SIGBUS, caught in C)


def shrank_error(path: str | None) -> FileShrankError:
    return FileShrankError(path)


def _check_status(status: int, path: str | None, refused: str) -> None:
    if status == FAULT:
        raise shrank_error(path)
    if status != lib.PYSCAN_OK:
        raise PyscanError(path, refused, "usage")


def new_counts(n: int | None = None) -> Any:
    """A zeroed ``pyscan_counts`` struct for the kernels to add into (or an array of n of them)."""
    return ffi.new("pyscan_counts *") if n is None else ffi.new("pyscan_counts[]", n)


def count_into(acc: Any, dtype: int, address: int, n_elements: int, swap: bool, path: str | None = None) -> None:
    """Add the counts of n_elements at address into acc, with the selected kernel path (without the GIL)."""
    index = _isa_index()
    status = lib.pyscan_count(index, dtype, ffi.cast("void *", address), n_elements, int(swap), acc)
    _check_status(status, path, f"kernel path {ISA_NAMES[index]!r} cannot count dtype {dtype}")


def count_batch(
    totals: Any,
    indexes: array.array[int],
    dtypes: array.array[int],
    addresses: array.array[int],
    lengths: array.array[int],
    swap: bool,
    path: str | None = None,
) -> None:
    """count_into for many pieces in one call: piece i adds into totals[indexes[i]].

    The arrays' item types: indexes "I" (uint32), dtypes "i" (int32), addresses and lengths "Q".
    """
    if not len(indexes) == len(dtypes) == len(addresses) == len(lengths):
        raise ValueError("count_batch: the arrays differ in length")
    status = lib.pyscan_count_batch(
        _isa_index(),
        len(indexes),
        ffi.from_buffer("int32_t[]", dtypes),
        ffi.from_buffer("uint64_t[]", addresses),
        ffi.from_buffer("uint64_t[]", lengths),
        int(swap),
        totals,
        ffi.from_buffer("uint32_t[]", indexes),
    )
    _check_status(status, path, "the kernel refused a batch of tensors")


def new_change_stats() -> Any:
    """A zeroed ``pyscan_change_stats`` struct for the rewrite kernels to add into."""
    return ffi.new("pyscan_change_stats *")


def transform_into(
    acc: Any, op: int, param: int, src: int, dst: int | None, n_words: int, swap: bool, path: str | None = None
) -> None:
    """Rewrite n F32 words from address src to dst (None: dry run; == src: in place), without the GIL."""
    out = ffi.NULL if dst is None else ffi.cast("void *", dst)
    status = lib.pyscan_transform(_isa_index(), op, param, ffi.cast("void *", src), out, n_words, int(swap), acc)
    _check_status(status, path, f"the rewrite kernel refused op {op} with parameter {param}")


def fake_quant_into(
    acc: Any,
    src: int,
    dst: int | None,
    n_rows: int,
    row_len: int,
    group: int,
    qmax: int,
    swap: bool,
    path: str | None = None,
) -> None:
    """Fake-quantize rows of F32 words from src to dst (see pyscan.h), without the GIL."""
    out = ffi.NULL if dst is None else ffi.cast("void *", dst)
    status = lib.pyscan_fake_quant(
        _isa_index(), ffi.cast("void *", src), out, n_rows, row_len, group, qmax, int(swap), acc
    )
    _check_status(status, path, f"the fake-quant kernel refused group {group}, qmax {qmax}")


def rewrite_op(op: int, param: int, row_len: int = 0, group: int = 0) -> Any:
    """A ``pyscan_rewrite`` struct: op and param as for transform_into, or op
    lib.PYSCAN_OP_FAKE_QUANT with param = qmax, row_len and group (see pyscan.h)."""
    return ffi.new("pyscan_rewrite *", {"op": op, "param": param, "row_len": row_len, "group": group})


class WriteLock:
    """Lets threads write into one output file, one pwrite at a time (see pyscan.h)."""

    __slots__ = ("handle",)

    def __init__(self) -> None:
        raw = lib.pyscan_write_lock_new()
        if raw == ffi.NULL:
            raise MemoryError("cannot create a write lock")
        self.handle = ffi.gc(raw, lib.pyscan_write_lock_free)


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int, lock: WriteLock, output: str) -> None:
    """pwrite all of data at offset under lock, without the GIL; PyscanError naming output if it fails."""
    error = lib.pyscan_write_all(fd, ffi.from_buffer(data), len(data), offset, lock.handle)
    if error:
        raise PyscanError(output, f"cannot write: {os.strerror(error)}", "io")


def rewrite_to_file(
    acc: Any,
    how: Any,
    check: Any,
    src: int,
    n_words: int,
    swap: bool,
    buffer: bytearray,
    fd: int,
    offset: int,
    lock: WriteLock,
    path: str,
    output: str,
) -> None:
    """Rewrite n F32 words at src into fd at offset through buffer (see pyscan.h), without the GIL.

    check is the op each rewritten piece must be a fixed point of: how itself (every such op is
    idempotent), or in a test, another one.  Errors name path (the input) or output.
    """
    error = ffi.new("int *")
    status = lib.pyscan_rewrite_to_file(
        _isa_index(), how, check, ffi.cast("void *", src), n_words, int(swap), ffi.from_buffer(buffer),
        len(buffer) // 4, fd, offset, lock.handle, acc, error,
    )  # fmt: skip
    if status == lib.PYSCAN_ERR_WRITE:
        raise PyscanError(output, f"cannot write: {os.strerror(error[0])}", "io")
    if status == lib.PYSCAN_ERR_CHECK:
        raise PyscanError(path, "a rewritten chunk failed its check (rewriting it again would change it)")
    _check_status(status, path, f"the rewrite kernel refused op {how.op} with parameter {how.param}")


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range of fd to disk now, without waiting (a hint; see pyscan.h)."""
    lib.pyscan_start_writeback(fd, offset, length)


def counts_as_dict(acc: Any) -> dict[str, int]:
    return {name: int(getattr(acc, name)) for name in COUNT_FIELDS}


def counts_as_rows(array: Any, n: int) -> Iterator[tuple[int, ...]]:
    """The counts of an array of n structs (new_counts(n)), a tuple per struct in COUNT_FIELDS order."""
    words = memoryview(ffi.buffer(array, n * ffi.sizeof("pyscan_counts"))).cast("Q").tolist() if n else []
    return zip(*[iter(words)] * len(COUNT_FIELDS), strict=True)  # consecutive groups, cut in C


class Mapping:
    """A whole file mapped into memory; unmapped when the last view of it is gone.

    ``buffer`` is a writable-or-not memoryview over the mapping.  Views made
    from it (numpy arrays included) keep the mapping alive, so closing the
    file never leaves a dangling view.
    """

    __slots__ = ("path", "address", "size", "buffer", "writable", "handle", "__weakref__")

    def __init__(
        self,
        path: str,
        address: int,
        size: int,
        buffer: memoryview,
        writable: bool = False,
        handle: Any = None,  # the pyscan_map struct, for faulted() and the madvise wrappers below
    ) -> None:
        self.path = path
        self.address = address
        self.size = size
        self.buffer = buffer
        self.writable = writable
        self.handle = handle

    def __repr__(self) -> str:
        return f"Mapping({self.path!r}, {self.size} bytes{', writable' if self.writable else ''})"

    def faulted(self) -> bool:
        """Whether a read of this mapping found the file shorter than when it was mapped (see pyscan.h)."""
        return self.handle is not None and bool(lib.pyscan_map_faulted(self.handle))

    def check(self) -> None:
        """Raise the one-line PyscanError if the file shrank under the mapping: what was read is zeros, not data."""
        if self.faulted():
            raise shrank_error(self.path)

    def prefetch(self, offset: int, length: int) -> None:
        """Map [offset, offset + length) in one call before reading it (fewer page faults)."""
        if self.handle is not None:
            lib.pyscan_map_prefetch(self.handle, offset, length)

    def advise(self, offset: int, length: int, *, sparse: bool) -> None:
        """Declare [offset, offset + length) read sparsely (no read-ahead), or front to back again."""
        if self.handle is not None:
            lib.pyscan_map_advise(self.handle, offset, length, int(sparse))

    def willneed(self, offset: int, length: int) -> None:
        """Start reading [offset, offset + length) into the page cache, without waiting (read-ahead off)."""
        if self.handle is not None:
            lib.pyscan_map_willneed(self.handle, offset, length)

    def release(self, offset: int, length: int) -> None:
        """Drop [offset, offset + length) from the resident set after reading it (bounded memory)."""
        if self.handle is not None:
            lib.pyscan_map_release(self.handle, offset, length)


def map_file(path: str | os.PathLike[str], writable: bool = False) -> Mapping:
    """Map a regular file, read-only unless writable is set."""
    fspath = os.fspath(path)
    raw = ffi.new("pyscan_map *")
    err = lib.pyscan_map_open(os.fsencode(fspath), int(writable), raw)
    if err != 0:
        reason = {errno.EISDIR: "is a folder, not a file", errno.EINVAL: "is not a regular file"}.get(
            err, os.strerror(err).lower()
        )
        raise PyscanError(fspath, reason, "io")
    size = int(raw.size)
    if size == 0:
        return Mapping(fspath, 0, 0, memoryview(b""), writable)
    # The gc-tracked base pointer owns the mapping; buffers (and numpy arrays
    # made from them) keep it alive, and it is unmapped when the last one goes.
    base = ffi.gc(ffi.cast("char *", raw.base), lambda _: lib.pyscan_map_close(raw))
    view = memoryview(ffi.buffer(base, size))
    if not writable:
        view = view.toreadonly()
    mapping = Mapping(fspath, int(ffi.cast("uintptr_t", base)), size, view, writable, raw)
    _live_mappings.add(mapping)
    return mapping


_live_mappings: weakref.WeakSet[Mapping] = weakref.WeakSet()


def check_mappings() -> None:
    """Raise the shrink error for the first live mapping that faulted: the last check before any output."""
    for mapping in list(_live_mappings):
        mapping.check()


def rename_noreplace(source: str, target: str) -> None:
    """Rename source to target, never replacing an existing target (FileExistsError then)."""
    err = lib.pyscan_rename_noreplace(os.fsencode(source), os.fsencode(target))
    if err != 0:
        raise OSError(err, os.strerror(err), target)
