"""Turn the paths a user gives into the model files to scan."""

from __future__ import annotations

import os
from collections.abc import Iterable

MODEL_SUFFIXES = (".gguf", ".safetensors")


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given (whatever their name), and *.gguf / *.safetensors found under folders, recursively.

    A path that does not exist is kept, so that it gets an error record of its own
    instead of vanishing from the job.  Within a folder, files come in sorted order.
    """
    found: list[str] = []
    for given in paths:
        path = os.fspath(given)
        if not os.path.isdir(path):
            found.append(path)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders.sort()
            found += [os.path.join(folder, name) for name in sorted(files) if name.endswith(MODEL_SUFFIXES)]
    return list(dict.fromkeys(found))  # a file named twice is scanned once
