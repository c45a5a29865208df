"""Pause Python's cyclic garbage collector while building many long-lived objects.

A file of 200,000 tensors makes a tuple per tensor info, a dict of counts and a record per
tensor.  None of them is in a reference cycle, yet at the default threshold (700 more container
allocations than frees) a collection walks the young ones, and the older generations are walked
again and again as they grow.  Paused, none of that happens in the block: the first collections
after it walk the new objects once per generation.  On that file the parse, the counts dicts and
the records took 0.78 s paused and 0.92 s not (in process, four alternating runs each).
Reference counting frees everything as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_running = 0  # pauses in progress, in every thread
_resume = False  # whether the collector was on when the first of them began


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the collector off; once the last pause in progress ends, turn it back on
    if it was on when the first began.

    Counted under a lock, so pauses may nest and overlap across threads (a Dask worker scans in
    several): the collector stays off while any runs, and is never left off by their interleaving.
    """
    global _running, _resume
    with _lock:
        if _running == 0:
            _resume = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _resume:
                gc.enable()
