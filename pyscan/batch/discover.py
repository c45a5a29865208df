"""Turn the paths a user gives into the model files to scan, and the folders that could not be read."""

from __future__ import annotations

import os
from collections.abc import Iterable

MODEL_SUFFIXES = (".gguf", ".safetensors")


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given (whatever their name), and *.gguf / *.safetensors found under folders, recursively.

    A path that does not exist is kept, so that it gets an error record of its own
    instead of vanishing from the job.  Within a folder, files come in sorted order.
    A file found under several spellings or links is listed once, as first found (by its resolved
    path).  Folders that cannot be read are left out: see discover_all.
    """
    return discover_all(paths)[0]


def discover_all(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """discover(), and (folder, reason) for every folder under the paths that could not be read."""
    found: list[str] = []
    unreadable: list[tuple[str, str]] = []

    def note(error: OSError) -> None:
        unreadable.append((os.fspath(error.filename), (error.strerror or str(error)).lower()))

    for given in paths:
        path = os.fspath(given)
        if not os.path.isdir(path):
            found.append(path)
            continue
        for folder, subfolders, files in os.walk(path, onerror=note):
            subfolders.sort()
            found += [os.path.join(folder, name) for name in sorted(files) if name.endswith(MODEL_SUFFIXES)]
    # A file named twice (models ./models $PWD/models, a link) is scanned once, under its first
    # spelling: matched on the resolved path, as --resume matches records.
    first: dict[str, str] = {}
    for path in found:
        first.setdefault(os.path.realpath(path), path)
    return list(first.values()), unreadable
