"""Which tensors --include / --exclude choose: shell-style globs on the tensor name, for every command."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from pyscan.errors import PyscanError
from pyscan.text import quote


def select(names: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> set[str]:
    """Names matching any include glob (all, if none given) and no exclude glob."""
    return {
        n for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    }  # fmt: skip


def nothing_selected(
    path: str, include: Sequence[str], exclude: Sequence[str], what: str = "tensor", where: str = "this file"
) -> PyscanError:
    """The usage error for globs that choose nothing: most likely a typo, never an empty success."""
    globs = " ".join([*(f"--include {quote(g)}" for g in include), *(f"--exclude {quote(g)}" for g in exclude)])
    return PyscanError(path, f"{globs} select no {what} of {where}", "usage")
