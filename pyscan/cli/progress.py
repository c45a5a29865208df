"""A progress bar on stderr for long work: only on a terminal, only after a second, never in --json."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SHOW_AFTER_SECONDS = 1.0  # short jobs never flash a bar


@contextmanager
def progress_bar(
    total_bytes: int | Callable[[], int], label: str, enabled: bool
) -> Iterator[Callable[[int], None] | None]:
    """Yield a bytes-done callback driving a tqdm bar, or None when no bar should be shown.

    total_bytes may be a function, called only when a bar will be shown (it may cost a parse).
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    if callable(total_bytes):
        total_bytes = total_bytes()
    if total_bytes == 0:
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=total_bytes,
        desc=label,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        delay=SHOW_AFTER_SECONDS,
        file=sys.stderr,
        leave=False,
    ) as bar:
        yield bar.update
