"""Checks of the library's numeric arguments, with the command line's limits.

A wrong type is a TypeError (a bool is not a count here), a value out of range a ValueError;
the message names the argument.
"""

from __future__ import annotations

import operator
import os

MAX_THREADS = 1024  # --threads and threads=: more is a typo, not a plan (threads are capped at the cores)


def integer(name: str, value: object) -> int:
    """value as an int: an int or what has __index__ (numpy's integers), not a bool or a float."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return operator.index(value)  # type: ignore[arg-type]


def count(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """value as an int in [low, high] (high None: no upper limit)."""
    number = integer(name, value)
    if number < low or (high is not None and number > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {limits}, not {number}")
    return number


def threads(value: object) -> int | None:
    """A threads= argument: None (all cores) or 1..MAX_THREADS."""
    return None if value is None else count("threads", value, 1, MAX_THREADS)


def text(name: str, value: object) -> str | None:
    """An optional string argument."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def flag(name: str, value: object) -> bool:
    """A True/False argument: a bool, not 0/1 or a string ("no" is not False)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def path(name: str, value: object) -> str:
    """A file name: a str or an os.PathLike of one, as a str."""
    if isinstance(value, str):
        return value
    spelled = os.fspath(value) if isinstance(value, os.PathLike) else None
    if not isinstance(spelled, str):
        raise TypeError(f"{name} must be a str or an os.PathLike, not {type(value).__name__}")
    return spelled


def patterns(name: str, value: object) -> tuple[str, ...]:
    """Globs: one string, or a list or tuple of strings."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{name} must be a string or a list of strings, not {type(value).__name__}")
    return tuple(value)


def callback(name: str, value: object) -> None:
    """An optional callable argument."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable, not {type(value).__name__}")
