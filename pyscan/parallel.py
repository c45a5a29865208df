"""Run chunks of a big file on a few threads: the kernels release the GIL, so they run in parallel.

concurrent.futures (which pulls in logging, ~7 ms) is imported only here, when a job is big
enough for threads (64 MiB or more): small files, most of the command line's runs, never pay it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

Job = TypeVar("Job")
Result = TypeVar("Result")

def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def capped_threads(threads: int | None) -> int:
    """The threads to use: all cores by default, never more than the cores (more only queue up)."""
    return min(threads or available_cores(), available_cores())


@contextlib.contextmanager
def map_threaded(function: Callable[[Job], Result], jobs: Iterable[Job], threads: int) -> Iterator[Iterator[Result]]:
    """function(job) for every job, on `threads` threads; results in the order they finish.

        with map_threaded(scan_chunk, chunks, 4) as results:
            for result in results: ...

    The first exception a job raises stops the jobs not yet started and is raised from the
    loop.  However the block is left (an exception, Ctrl-C, a break), no thread outlives it:
    leaving waits for the jobs in progress, so none touches a file the caller then closes.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pending = list(jobs)
    stop = threading.Event()

    def run(job: Job) -> Result | None:
        if stop.is_set():  # an earlier job failed, or the caller left: do not start this one
            return None
        try:
            return function(job)
        except BaseException:
            stop.set()
            raise

    def results(futures: list[Future[Result | None]]) -> Iterator[Result]:
        for future in as_completed(futures):
            result = future.result()
            if result is not None or not stop.is_set():
                yield result  # type: ignore[misc]  # None only for jobs skipped after a stop

    executor = ThreadPoolExecutor(max_workers=max(1, min(threads, len(pending))), thread_name_prefix="pyscan-")
    try:
        yield results([executor.submit(run, job) for job in pending])
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
