"""map_threaded: every job once, on several threads, errors raised, no thread outliving its block."""

from __future__ import annotations

import threading

import pytest

from pyscan.parallel import map_threaded


def pyscan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pyscan-")]


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n_jobs", [0, 1, 2, 7, 100])
def test_every_job_once(threads: int, n_jobs: int) -> None:
    with map_threaded(lambda job: job * job, range(n_jobs), threads) as results:
        squares = list(results)
    assert sorted(squares) == [job * job for job in range(n_jobs)]
    assert pyscan_threads() == []


def test_jobs_run_at_the_same_time() -> None:
    together = threading.Barrier(3, timeout=60)  # three jobs meet only if three threads run them at once

    def meet(job: int) -> int:
        together.wait()  # raises BrokenBarrierError (failing the test) rather than hanging
        return threading.get_ident()

    with map_threaded(meet, range(3), 3) as results:
        assert len(set(results)) == 3


@pytest.mark.parametrize("error", [ValueError("bad chunk"), KeyboardInterrupt()])
def test_first_error_is_raised_and_later_jobs_never_start(error: BaseException) -> None:
    started: list[int] = []

    def job(n: int) -> int:
        started.append(n)
        if n == 3:
            raise error
        return n

    with pytest.raises(type(error)), map_threaded(job, range(1000), 1) as results:
        list(results)
    assert started == [0, 1, 2, 3]
    assert pyscan_threads() == []


def test_leaving_the_block_early_stops_the_threads() -> None:
    with map_threaded(str, range(10_000), 2) as results:
        next(results)
    assert pyscan_threads() == []


def test_leaving_the_block_early_starts_no_more_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    # If the thread took job 1 before the caller left, job 1 may finish only once the block is
    # joining its threads, so whether job 2 starts depends on the stop alone, not on who runs first.
    ran: list[int] = []
    block_is_joining = threading.Event()
    real_join = threading.Thread.join

    def join(thread: threading.Thread, timeout: float | None = None) -> None:
        block_is_joining.set()
        real_join(thread, timeout)

    def job(n: int) -> int:
        if n > 0:
            block_is_joining.wait(timeout=60)
        ran.append(n)
        return n

    monkeypatch.setattr(threading.Thread, "join", join)
    with map_threaded(job, range(10_000), 1) as results:
        assert next(results) == 0
    assert ran in ([0], [0, 1])  # job 1 runs only if the thread took it before the caller left
    assert pyscan_threads() == []


def test_an_error_in_the_caller_stops_the_threads() -> None:
    with pytest.raises(RuntimeError, match="caller"), map_threaded(str, range(10_000), 2) as results:
        for _ in results:
            raise RuntimeError("caller")
    assert pyscan_threads() == []


def test_a_thread_that_fails_to_start_stops_and_joins_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    first_job_may_finish = threading.Event()
    real_start = threading.Thread.start
    starts = 0

    def second_start_fails(thread: threading.Thread) -> None:
        nonlocal starts
        starts += 1
        if starts == 2:
            first_job_may_finish.set()
            raise RuntimeError("can't start new thread")
        real_start(thread)

    def job(n: int) -> int:
        if n == 0:
            first_job_may_finish.wait(timeout=60)  # still running when the second start fails
        ran.append(n)
        return n

    monkeypatch.setattr(threading.Thread, "start", second_start_fails)
    with pytest.raises(RuntimeError, match="start new thread"), map_threaded(job, range(50), 4) as results:
        list(results)
    assert pyscan_threads() == []  # the started thread was stopped and joined, not left running
    assert len(ran) < 50
