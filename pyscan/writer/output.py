"""Write a fake-quantized model safely.

-o OUT: a temporary file is created in OUT's folder; the bytes that do not
change are copied by the kernel (copy_file_range, which reflinks where the
file system can), the chosen tensors are rewritten piece by piece into a
small buffer, each piece checked (the mode would change nothing more) and
written with pwrite (rewrite.engine); the finished file is re-parsed, its header compared
byte for byte with IN's, and only then renamed over OUT.  On any
failure, Ctrl-C or SIGTERM included, the temporary file is removed: there is
never a partial OUT, and IN is only ever read.

Like cp, -o does not wait for the disk by default: the rename is atomic for
every process that reads OUT.  durable=True (--fsync) also survives a power
cut or OS crash: writeback starts chunk by chunk while the rewrite runs, the
file is fsync'ed before the rename, and the folder after it.

--in-place: the chosen tensors are rewritten through a writable mapping, only
the words that change are stored, and the file is flushed before returning.
Every mode allowed in place is idempotent (the block formats are refused), so an
interrupted in-place run is finished by running it again.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence

from pyscan import arguments, native
from pyscan.errors import FileShrankError, PyscanError
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.parser.opener import open_model
from pyscan.rewrite.engine import FileSink, RewriteReport, TensorChange, rewrite_tensors, select_targets
from pyscan.rewrite.modes import RewriteMode

COPY_STEP = 1 << 30  # copy_file_range takes at most this per call, comfortably
WHOLE_COPY_MAX_SHARE = 16  # copy the whole file in one go when the targets are at most 1/16 of it


def rewrite_file(
    path: str | os.PathLike[str],
    mode: RewriteMode,
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    force: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    durable: bool = False,
) -> RewriteReport:
    """Apply mode to the chosen F32 tensors of path: into output, in place, or (neither) as a dry run.

    progress, if given, is called with the bytes of each rewritten chunk; the total is
    4 * (elements of the chosen F32 tensors), see select_targets.
    """
    # every argument is checked before the file is opened (a wrong type: TypeError, naming it)
    path = arguments.path("path", path)
    if not isinstance(mode, RewriteMode):
        raise TypeError(f"mode must be a pyscan.RewriteMode (see pyscan.parse_mode), not {type(mode).__name__}")
    output = None if output is None else arguments.path("output", output)
    in_place, force = arguments.flag("in_place", in_place), arguments.flag("force", force)
    durable = arguments.flag("durable", durable)
    include, exclude = arguments.patterns("include", include), arguments.patterns("exclude", exclude)
    threads = arguments.threads(threads)
    arguments.callback("progress", progress)
    if output is not None and in_place:
        raise PyscanError(None, "choose either -o OUT or --in-place", "usage")
    with open_model(path, writable=in_place) as model:
        return rewrite_model(
            model, mode, output=output, in_place=in_place, force=force, include=include, exclude=exclude,
            threads=threads, progress=progress, durable=durable,
        )  # fmt: skip


def rewrite_model(
    model: ModelFile,
    mode: RewriteMode,
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    force: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    durable: bool = False,
) -> RewriteReport:
    """rewrite_file for a model already open (writable for in_place): the command line parses IN once."""
    source = model.path
    model.require_data()
    if output is not None and in_place:
        raise PyscanError(None, "choose either -o OUT or --in-place", "usage")
    if output is not None:
        check_output(source, os.fspath(output), force)
    try:
        targets = select_targets(model, include, exclude)
        if output is not None:
            changes = _write_copy(model, targets, mode, os.fspath(output), force, threads, progress, durable)
        else:
            changes = rewrite_tensors(model, targets, mode, in_place=in_place, threads=threads, progress=progress)
            if in_place:
                _flush(source)
        model.check()
    except FileShrankError:
        if in_place:
            raise FileShrankError(
                source,
                "tensors before the fault may already be rewritten (every mode is idempotent: restore the file "
                "and run the same command again to finish)",
            ) from None
        raise FileShrankError(source, "nothing was written" if output is not None else "") from None
    return RewriteReport(
        source,
        None if output is None else os.fspath(output),
        str(mode),
        in_place,
        output is None and not in_place,
        changes,
    )


def check_output(source: str, output: str, force: bool) -> None:
    """Refuse an OUT that is IN (by any name or link), not a regular file, or an existing file without force."""
    from pyscan.writer.atomic import check_target  # only writes need it (and fcntl): not every start-up

    check_target(output, [source], force, same_as_input="is the input file; use --in-place to rewrite it")


def _write_copy(
    gguf: ModelFile,
    targets: list[TensorInfo],
    mode: RewriteMode,
    output: str,
    force: bool,
    threads: int | None,
    progress: Callable[[int], None] | None = None,
    durable: bool = False,
) -> list[TensorChange]:
    from pyscan.writer.atomic import AtomicFile

    with AtomicFile(output, force, inputs=[gguf.path]) as out:
        try:
            # No ftruncate to the final size first: on ext4, filling a sparse file is 2-3x slower.
            _copy_unchanged(gguf, targets, out.fd, output, durable)

            def start_writeback(offset: int, length: int) -> None:
                # Overlap the disk with the next chunk instead of one long fsync at the end.
                native.start_writeback(out.fd, offset, length)

            sink = FileSink(out.fd, output, native.WriteLock(), start_writeback if durable else None)
            changes = rewrite_tensors(gguf, targets, mode, sink=sink, threads=threads, progress=progress)
        except OSError as exc:
            raise PyscanError(output, f"cannot write: {exc.strerror or exc}", "io") from None
        _check_copy(gguf, out.temporary, output)
        out.publish(durable)
        return changes


def _copy_unchanged(gguf: ModelFile, targets: list[TensorInfo], out_fd: int, output: str, durable: bool) -> None:
    """Copy every byte outside the target tensors, at the same offsets.

    When the targets are a small part of the file (F32 norms in a quantized model), the
    whole file goes over in one copy_file_range, as cp does, and the targets are simply
    written over afterwards: cutting the copy at every tensor costs more than rewriting
    a few kilobytes twice.
    """
    spans = sorted((t.offset, t.offset + 4 * t.n_elements) for t in targets)
    if sum(end - start for start, end in spans) * WHOLE_COPY_MAX_SHARE <= gguf.size:
        spans = []
    position = 0
    with open(gguf.path, "rb") as source:
        for start, end in [*spans, (gguf.size, gguf.size)]:
            _copy_range(source.fileno(), out_fd, position, start - position, gguf, durable)
            position = max(position, end)


def _copy_range(in_fd: int, out_fd: int, offset: int, count: int, gguf: ModelFile, durable: bool) -> None:
    done = 0
    while done < count:
        step = min(count - done, COPY_STEP)
        try:
            copied = os.copy_file_range(in_fd, out_fd, step, offset + done, offset + done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            copied = os.pwrite(out_fd, gguf.mapping.buffer[offset + done : offset + done + step], offset + done)
        if copied == 0:
            raise OSError(errno.EIO, "the input ended early while copying")
        if durable:
            native.start_writeback(out_fd, offset + done, copied)
        done += copied


def _check_copy(gguf: ModelFile, temporary: str, output: str) -> None:
    """Re-parse the written file: the same size, header bytes and layout as IN.

    The rewritten data was checked chunk by chunk before it was written (see rewrite_tensors).
    """
    with open_model(temporary) as written:
        same_layout = written.size == gguf.size and [(t.name, t.type_id, t.offset) for t in written.tensors] == [
            (t.name, t.type_id, t.offset) for t in gguf.tensors
        ]
        if not same_layout or written.mapping.buffer[: gguf.data_offset] != gguf.mapping.buffer[: gguf.data_offset]:
            raise PyscanError(output, "the written file does not match the input's layout; nothing was written")


def _flush(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
