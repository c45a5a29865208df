"""Run scans over many files: in this process, in a pool of processes, or on a Dask cluster."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pyscan import arguments
from pyscan.batch.discover import discover_all
from pyscan.batch.records import BatchResult, file_identity
from pyscan.errors import PyscanError
from pyscan.parallel import available_cores
from pyscan.selection import globs


def scan_one(
    path: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), threads: int | None = None
) -> BatchResult:
    """Scan a file, turning every failure into an error result (this runs in workers: nothing may escape)."""
    from pyscan.scan.scanner import scan

    size, mtime_ns = file_identity(path)
    try:
        report = scan(path, include=include, exclude=exclude, threads=threads)
    except PyscanError as exc:
        return BatchResult(path, size, mtime_ns, error=exc.reason, error_kind=exc.kind)
    except Exception as exc:  # a bug must not stop the other 999 files
        return BatchResult(path, size, mtime_ns, error=f"internal error: {exc!r}", error_kind="internal")
    return BatchResult(path, size, mtime_ns, report=report)


def unreadable_folder(folder: str, reason: str) -> BatchResult:
    """The error record of a folder that could not be searched (see discover_all)."""
    return BatchResult(folder, None, None, error=f"cannot read this folder: {reason}", error_kind="io")


def scan_many(
    paths: Sequence[str],
    jobs: int = 1,
    client: Any = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
) -> Generator[BatchResult, None, None]:
    """Scan every path and yield each result as soon as it is ready (not in path order).

    Folders are searched as the command line searches them (pyscan.batch.discover): their *.gguf and
    *.safetensors files, recursively, each file once; a folder that cannot be read gives an error
    record, and one that holds no model gives none.
    jobs > 1 runs that many processes here; client (a dask.distributed Client) runs
    one task per file on its cluster instead, whose workers must see the same paths.
    Threads per file default to the cores divided among the jobs.  Closing the iterator
    early (an error, Ctrl-C, SIGTERM) stops and reaps every worker process before it returns.
    A jobs or threads of the wrong type or out of range raises TypeError or ValueError at the call.
    """
    jobs, threads = arguments.count("jobs", jobs), arguments.threads(threads)
    include, exclude = globs(include), globs(exclude)  # (checked here too, not at the first result)
    if isinstance(paths, (str, os.PathLike)):  # one path, not a sequence of one-character paths
        paths = [os.fspath(paths)]
    return _search_and_scan(paths, jobs, client, include, exclude, threads)


def _search_and_scan(
    paths: Sequence[str], jobs: int, client: Any, include: Sequence[str], exclude: Sequence[str],
    threads: int | None,
) -> Generator[BatchResult, None, None]:  # fmt: skip
    files, unreadable = discover_all(paths)
    for folder, reason in unreadable:
        yield unreadable_folder(folder, reason)
    yield from scan_files(files, jobs, client, include, exclude, threads)


def scan_files(
    paths: Sequence[str],
    jobs: int = 1,
    client: Any = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
) -> Generator[BatchResult, None, None]:
    """scan_many for paths already discovered and arguments already checked (the command line's)."""
    include_t, exclude_t = globs(include), globs(exclude)
    if client is not None:
        yield from _on_dask(client, paths, include_t, exclude_t, threads)
        return
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield scan_one(path, include_t, exclude_t, threads)
        return
    yield from _in_processes(paths, jobs, include_t, exclude_t, threads)


def _worker_start() -> None:
    # The parent decides when workers stop: Ctrl-C reaches the whole process group, but only the
    # parent acts on it; and SIGTERM (the parent's way to stop us) must kill at once, not run the
    # handler a forked worker inherited from the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _in_processes(
    paths: Sequence[str], jobs: int, include: tuple[str, ...], exclude: tuple[str, ...], threads: int | None
) -> Iterator[BatchResult]:
    per_job = threads or max(1, available_cores() // jobs)
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(paths)), initializer=_worker_start)
    pending: dict[Future[BatchResult], str] = {}
    reported: set[str] = set()
    finished = False
    try:
        try:
            for path in paths:  # submit itself raises BrokenProcessPool if a worker already died
                pending[pool.submit(scan_one, path, include, exclude, per_job)] = path
            for future in as_completed(pending):
                result = future.result()  # BrokenProcessPool: this file too gets a record below
                reported.add(pending.pop(future))
                yield result
        except BrokenProcessPool:
            # A worker died (killed, out of memory, a crash): every file not yet reported gets a record.
            for path in [p for p in paths if p not in reported]:
                size, mtime_ns = file_identity(path)
                yield BatchResult(
                    path, size, mtime_ns, error="a worker process died while scanning (killed, or out of memory?)",
                    error_kind="internal",
                )  # fmt: skip
            pending.clear()
        finished = True
    finally:
        if not finished:
            _stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's worker processes (the pool then reaps them on shutdown)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError):  # already gone
            process.terminate()


def _on_dask(
    client: Any, paths: Sequence[str], include: tuple[str, ...], exclude: tuple[str, ...], threads: int | None
) -> Iterator[BatchResult]:
    distributed: Any = importlib.import_module("distributed")  # untyped: keep mypy's view the same without it
    # Workers run in folders of their own: send absolute paths, and give each result back its path as typed.
    typed: dict[str, str] = {}
    for path in paths:  # a.gguf and ./a.gguf are one file: one task
        typed.setdefault(os.path.abspath(path), path)
    # pure=False: a file may have changed since the last job; never reuse a cached result.
    futures = client.map(scan_on_worker, list(typed), include=include, exclude=exclude, threads=threads, pure=False)
    for future in distributed.as_completed(futures):
        result = future.result()
        path = typed.get(result.path, result.path)
        if result.report is not None:
            result.report.path = path
        yield result._replace(path=path)


def scan_on_worker(
    path: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), threads: int | None = None
) -> BatchResult:
    """scan_one on a Dask worker: an error says which worker met it (its files may differ from ours)."""
    result = scan_one(path, include, exclude, threads)
    if result.error is None:
        return result
    try:
        worker = importlib.import_module("distributed").get_worker().address
    except (ImportError, ValueError):  # not on a worker after all
        return result
    return result._replace(error=f"{result.error} (on Dask worker {worker})")


def connect(address: str) -> Any:
    """A Client for the Dask scheduler at address; PyscanError if Dask is missing or unreachable."""
    try:
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise PyscanError(None, "--dask-scheduler needs Dask: pip install 'pyscan[dask]'", "usage") from None
    try:
        return distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise PyscanError(None, f"cannot reach the Dask scheduler at {address}: {exc}", "io") from None
