"""Which tensors --include / --exclude choose: shell-style globs on the tensor name, for every command."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence


def select(names: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> set[str]:
    """Names matching any include glob (all, if none given) and no exclude glob."""
    return {
        n for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    }  # fmt: skip
