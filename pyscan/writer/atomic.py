"""Every file pyscan writes: where it may go, and how it appears there complete or not at all.

The rules, for -o, --html, --plot and the --resume report alike:

- a target that exists must be a regular file: a folder, a device node, a FIFO
  or a socket is refused, never replaced;
- a target that is one of the command's inputs (by any path or link) is refused;
- a target that is a symbolic link is refused (all but the --resume report, which is appended to,
  never renamed): the rename would replace the link, not the file it names (``-o /dev/stdout
  --force`` would replace the system's /dev/stdout);
- an existing target is replaced only with force (--force).

A new file is written to a hidden temporary file beside its target, created with O_EXCL and the
mode a plain open() gives (the kernel applies the umask), and locked with flock while it is
written.  Only once it is complete and checked is it renamed to the target: with a no-replace
rename, so a target that another process created meanwhile is never replaced; force replaces only
the file that was there when the write began, unchanged, and refuses one that took its place.  A
temporary file that a killed run left behind is unlocked: a later write to the same target removes
it and says so; one that is still locked belongs to a live process, and one that is an input of the
command (by any path or link) is the user's file: both are only mentioned, never removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import warnings
from collections.abc import Iterator, Sequence

from pyscan import native
from pyscan.errors import PyscanError
from pyscan.text import quote

TEMPORARY_SUFFIX = ".pyscan-tmp"
# The bytes of a target's name that its temporary names hold: '.' NAME '.' 12 hex '.pyscan-new' is
# then at most 255 bytes, the NAME_MAX of Linux's file systems.
MAX_TARGET_NAME_BYTES = 255 - len(".") - len(".") - 12 - len(".pyscan-new")
FILE_MODE = 0o666  # what open(path, "w") gives; the kernel applies the umask


MEANWHILE = "pyscan was writing it (another process?); it was left as it is"


class PyscanWarning(UserWarning):
    """Something worth saying that does not stop the command (the CLI prints it as one line)."""


def check_target(
    target: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    force: bool = False,
    same_as_input: str = "is an input of this command",
    force_option: str = "force=True",
) -> None:
    """Refuse an output target that is a folder or other non-regular file, an input, a link, or exists without force.

    force_option is how the caller asks for force, named in the refusal: Python's keyword here, and
    the command line passes "--force".
    """
    path = os.fspath(target)
    try:
        info = os.stat(path)  # follows links: what a rename over path would hide or replace
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise PyscanError(path, f"cannot use as an output: {exc.strerror or exc}", "io") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise PyscanError(path, "is a folder; name a file to write", "usage")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise PyscanError(path, "is not a regular file (a device, FIFO or socket); pyscan writes only files", "usage")
    for given in inputs:
        if is_same_file(path, os.fspath(given)):
            raise PyscanError(path, same_as_input, "usage")
    if os.path.islink(path):
        raise PyscanError(
            path, "is a symbolic link: writing would replace the link, not the file it names; name that file", "usage"
        )
    if info is not None and not force:
        raise PyscanError(path, f"already exists (pass {force_option} to replace it)", "usage")


def is_same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class AtomicFile:
    """A temporary file beside target that becomes target on publish(), or vanishes on failure.

    Use as a context manager: leaving the block without publish() (an error, Ctrl-C, SIGTERM)
    removes the temporary file.
    """

    __slots__ = ("target", "force", "fd", "temporary", "folder", "_published", "_replaces")

    def __init__(
        self,
        target: str | os.PathLike[str],
        force: bool = False,
        *,
        inputs: Sequence[str | os.PathLike[str]],
    ) -> None:
        """inputs: the files the command reads; a leftover-looking file that is one of them is kept."""
        self.target = os.fspath(target)
        self.force = force
        # The file force may replace: the one there now.  One that appears, or takes its place, while
        # we write belongs to someone else and is left alone.
        self._replaces = _identity(self.target) if force else None
        self.folder = os.path.dirname(os.path.abspath(self.target))
        remove_leftovers(self.target, inputs)
        self.fd, self.temporary = _create_temporary(self.folder, self.target)
        self._published = False

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if not self._published:
            with contextlib.suppress(OSError):
                os.unlink(self.temporary)

    def publish(self, durable: bool = False) -> None:
        """Rename the finished temporary file to target (replacing it only with force)."""
        native.check_mappings()  # nothing read from a file that shrank may reach an output
        try:
            if durable:
                os.fsync(self.fd)
            if self._replaces is None:
                native.rename_noreplace(self.temporary, self.target)
            elif _identity(self.target) == self._replaces:
                os.replace(self.temporary, self.target)
            else:
                raise PyscanError(self.target, f"was replaced or changed while {MEANWHILE}", "io")
        except FileExistsError:
            raise PyscanError(self.target, f"appeared while {MEANWHILE}", "io") from None
        except OSError as exc:
            raise PyscanError(self.target, f"cannot write: {exc.strerror or exc}", "io") from None
        self._published = True
        if durable:
            with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the rename is atomic
                fd = os.open(self.folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _identity(path: str) -> tuple[int, int, int] | None:
    """What path names itself (a link, not what it points to), or None if nothing.

    The change time too: a file created where one was just removed often gets its inode number.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PyscanError(path, f"cannot write: {exc.strerror or exc}", "io") from None
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _create_temporary(folder: str, target: str) -> tuple[int, str]:
    """A new, exclusively created and locked hidden file beside target (tempfile.mkstemp without its import).

    It is created under a name leftover checks ignore, locked, and only then given its temporary
    name: no other run can find it unlocked and take it for a dead run's leftover.
    """
    for _ in range(100):
        stem = os.path.join(folder, f"{_temporary_prefix(target)}{os.urandom(6).hex()}")
        try:
            fd = os.open(stem + ".pyscan-new", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise PyscanError(target, f"cannot create a file in {folder}: {exc.strerror or exc}", "io") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the fd closes, i.e. until this process ends at the latest
            os.rename(stem + ".pyscan-new", stem + TEMPORARY_SUFFIX)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(stem + ".pyscan-new")
            raise
        return fd, stem + TEMPORARY_SUFFIX
    raise PyscanError(target, f"cannot create a temporary file in {folder}", "io")


def _temporary_prefix(target: str) -> str:
    """'.TARGET.', the start of target's temporary names, short enough that the whole name fits NAME_MAX.

    A name of 231-255 bytes is legal but leaves no room for the 25 bytes the temporary name adds: it
    is cut, and a hash of the whole name keeps two long names that start alike apart.
    """
    name = os.fsencode(os.path.basename(target))
    if len(name) > MAX_TARGET_NAME_BYTES:
        import hashlib  # only for very long names

        digest = hashlib.blake2s(name, digest_size=4).hexdigest().encode()
        name = name[: MAX_TARGET_NAME_BYTES - len(digest) - 1] + b"~" + digest
    return f".{os.fsdecode(name)}."


def leftovers(target: str) -> Iterator[str]:
    """Temporary files of earlier writes to target, in its folder."""
    folder = os.path.dirname(os.path.abspath(target))
    prefix = _temporary_prefix(target)
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            middle = name[len(prefix) : -len(TEMPORARY_SUFFIX)]
            # exactly .TARGET.<12 hex>.pyscan-tmp: not the temporary files of a target named TARGET.x
            if name.startswith(prefix) and name.endswith(TEMPORARY_SUFFIX) and len(middle) == 12 and all(
                c in "0123456789abcdef" for c in middle
            ):
                yield os.path.join(folder, name)


def remove_leftovers(target: str, inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Remove the temporary files that killed writes to target left behind; mention those still being
    written, and those that are one of inputs (a model may be named like a leftover)."""
    kept: set[tuple[int, int]] = set()  # (st_dev, st_ino) of each input, links followed
    for given in inputs:
        with contextlib.suppress(OSError):
            info = os.stat(given)
            kept.add((info.st_dev, info.st_ino))
    for path in leftovers(target):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                continue
            if (info.st_dev, info.st_ino) in kept:
                warnings.warn(
                    f"{quote(path)} is named like a leftover of a write to {quote(target)}, but it is an input "
                    "of this command; left alone",
                    PyscanWarning,
                    stacklevel=2,
                )
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    warnings.warn(
                        f"{quote(path)} is being written by another running pyscan (its own output for "
                        f"{quote(target)}); left alone",
                        PyscanWarning,
                        stacklevel=2,
                    )
                continue
            os.unlink(path)
            warnings.warn(
                f"removed {quote(path)}, left behind by an earlier write to {quote(target)} that was killed",
                PyscanWarning,
                stacklevel=2,
            )
        except OSError:
            continue
        finally:
            os.close(fd)
