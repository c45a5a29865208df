"""Pause Python's cyclic garbage collector while building many long-lived objects.

A file of 200,000 tensors makes a tuple per tensor info, a dict of counts and a record per
tensor.  None of them form reference cycles, yet every 700 new objects start a collection that
walks the young ones, and the older generations are walked again as they grow: on that file the
parse took 0.35 s with the collector on and 0.26 s with it off, building the report 0.29 s and
0.17 s (three runs each).  Reference counting still frees everything as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the collector off; turn it back on after if it was on before.

    Nesting and threads are safe: a pause that starts inside another (in this thread or another)
    finds the collector off and leaves it off when it ends; the first one turns it back on, and
    what is left of a later one then runs with the collector on, slower but the same.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
