"""Pause Python's cyclic garbage collector while the command line builds a file's report.

A file of 200,000 tensors makes a tuple per tensor info, a dict of counts and a record per
tensor.  None of them is in a reference cycle, yet in CPython 3.10-3.13, at the default threshold
(700 more container allocations than frees), a collection walks the young objects, and the older
generations are walked again and again as they grow.  With the collector off none of those walks
happens, and reference counting has freed the records by the time it is back on.  Only the command
line pauses it, since it owns its process; the library leaves the collector alone: it is
process-wide state, and the caller's threads, forks and signal handlers are not pyscan's to reason
about.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the collector off; turn it back on after if it was on before (tests call
    main() inside the test process, and must get it back)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
