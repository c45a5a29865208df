"""Run scans over many files: in this process, in a pool of processes, or on a Dask cluster."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from pyscan.batch.records import BatchResult, scan_one
from pyscan.errors import PyscanError


def scan_many(
    paths: Sequence[str],
    jobs: int = 1,
    client: Any = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    threads: int | None = None,
) -> Iterator[BatchResult]:
    """Scan every path and yield each result as soon as it is ready (not in path order).

    jobs > 1 runs that many processes here; client (a dask.distributed Client) runs
    one task per file on its cluster instead, whose workers must see the same paths.
    Threads per file default to the cores divided among the jobs.
    """
    include_t, exclude_t = tuple(include), tuple(exclude)
    if client is not None:
        yield from _on_dask(client, paths, include_t, exclude_t, threads)
        return
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield scan_one(path, include_t, exclude_t, threads)
        return
    per_job = threads or max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(scan_one, path, include_t, exclude_t, per_job) for path in paths]
        for future in as_completed(futures):
            yield future.result()


def _on_dask(
    client: Any, paths: Sequence[str], include: tuple[str, ...], exclude: tuple[str, ...], threads: int | None
) -> Iterator[BatchResult]:
    distributed: Any = importlib.import_module("distributed")  # untyped: keep mypy's view the same without it
    # pure=False: a file may have changed since the last job; never reuse a cached result.
    futures = client.map(scan_one, list(paths), include=include, exclude=exclude, threads=threads, pure=False)
    for future in distributed.as_completed(futures):
        yield future.result()


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
