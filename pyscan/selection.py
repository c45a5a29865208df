"""Which tensors --include / --exclude choose: shell-style globs on the tensor name, for every command."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from pyscan.errors import PyscanError
from pyscan.text import quote


def globs(given: str | Sequence[str]) -> tuple[str, ...]:
    """The globs as a tuple; one string is one glob (a str is a Sequence[str]: of its characters)."""
    return (given,) if isinstance(given, str) else tuple(given)


def select(names: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> set[str]:
    """Names matching any include glob (all, if none given) and no exclude glob."""
    include, exclude = globs(include), globs(exclude)
    return {
        n for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    }  # fmt: skip


def chooses(names: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> bool:
    """Whether the globs choose one thing known by several names (a diff's pair: A's name and B's):
    an exclude glob matching any of them leaves it out; an include glob matching any takes it."""
    include, exclude = globs(include), globs(exclude)
    if any(fnmatch.fnmatchcase(n, g) for n in names for g in exclude):
        return False
    return not include or any(fnmatch.fnmatchcase(n, g) for n in names for g in include)


def nothing_selected(
    path: str, include: Sequence[str], exclude: Sequence[str], what: str = "tensor", where: str = "this file"
) -> PyscanError:
    """The usage error for globs that choose nothing: most likely a typo, never an empty success."""
    include, exclude = globs(include), globs(exclude)
    given = " ".join([*(f"--include {quote(g)}" for g in include), *(f"--exclude {quote(g)}" for g in exclude)])
    return PyscanError(path, f"{given} select no {what} of {where}", "usage")
