"""Run chunks of a big file on a few threads: the kernels release the GIL, so they run in parallel.

Plain threading and one queue, not concurrent.futures, which pulls in logging: 5.6 ms of a
big scan's start-up (python -X importtime).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def capped_threads(threads: int | None) -> int:
    """The threads to use: all cores by default, never more than the cores (more only queue up)."""
    return min(threads or available_cores(), available_cores())


class _Finished(Generic[Result]):
    """What a thread hands the caller: a job's result, the exception a job raised, or its own end."""

    __slots__ = ("result", "error", "ended")

    def __init__(self, result: Result | None = None, error: BaseException | None = None, ended: bool = False):
        self.result, self.error, self.ended = result, error, ended


@contextlib.contextmanager
def map_threaded(function: Callable[[Job], Result], jobs: Iterable[Job], threads: int) -> Iterator[Iterator[Result]]:
    """function(job) for every job, on `threads` threads; results in the order they finish.

        with map_threaded(scan_chunk, chunks, 4) as results:
            for result in results: ...

    The first exception a job raises stops the jobs not yet started and is raised from the
    loop.  However the block is left (an exception, Ctrl-C, a break), no thread outlives it:
    leaving waits for the jobs in progress, so none touches a file the caller then closes.
    """
    pending = list(jobs)
    next_index = itertools.count()  # next() on it is atomic: each job is taken by one thread
    stop = threading.Event()
    finished: queue.SimpleQueue[_Finished[Result]] = queue.SimpleQueue()

    def work() -> None:
        try:
            while not stop.is_set():  # an earlier job failed, or the caller left: start no more
                index = next(next_index)
                if index >= len(pending):
                    break
                try:
                    finished.put(_Finished(result=function(pending[index])))
                except BaseException as error:
                    stop.set()
                    finished.put(_Finished(error=error))
        finally:
            finished.put(_Finished(ended=True))

    def results(running: int) -> Iterator[Result]:
        while running:
            item = finished.get()
            if item.error is not None:
                raise item.error
            if item.ended:
                running -= 1
            else:
                yield item.result  # type: ignore[misc]  # a job's own result, None only if it returned None

    started: list[threading.Thread] = []
    try:  # a thread that fails to start (or Ctrl-C while starting) must still stop and join the others
        for n in range(min(max(1, threads), len(pending))):
            worker = threading.Thread(target=work, name=f"pyscan-{n}")
            worker.start()
            started.append(worker)
        yield results(len(started))
    finally:
        stop.set()
        for worker in started:
            worker.join()
