"""pyscan: how much precision do a GGUF model's weights really carry?

``pyscan.open(path)`` parses a file (metadata, tensor infos, zero-copy numpy
views); ``pyscan.scan(path)`` counts, tensor by tensor, the values that are
exactly representable in BF16 / FP16, and returns a report with ``to_dict()``.
Everything wrong with an input raises ``pyscan.PyscanError``.
"""

import importlib
from typing import TYPE_CHECKING, Any

from pyscan.errors import PyscanError
from pyscan.native import available_isas, current_isa
from pyscan.parser import ModelFile, TensorInfo
from pyscan.parser import open_model as open
from pyscan.rewrite import RewriteMode, RewriteReport, parse_mode
from pyscan.scan import FileReport, TensorReport, scan
from pyscan.writer import rewrite_file

if TYPE_CHECKING:
    from pyscan.batch import BatchResult, scan_many
    from pyscan.diff.compare import DiffReport
    from pyscan.diff.compare import diff as compare


def __getattr__(name: str) -> Any:
    # Comparing needs numpy (~100 ms to import) and batches need multiprocessing (~15 ms): the
    # command line starts faster when they load only once used.  (The comparing function is
    # `compare`, since `pyscan.diff` is the subpackage that holds it.)
    if name in ("compare", "DiffReport"):
        module = importlib.import_module("pyscan.diff.compare")
        return module.diff if name == "compare" else module.DiffReport
    if name in ("scan_many", "BatchResult"):
        return getattr(importlib.import_module("pyscan.batch"), name)
    raise AttributeError(f"module 'pyscan' has no attribute {name!r}")


__version__ = "0.1.0"  # the package version: pyproject.toml reads it from here

__all__ = [
    "BatchResult",
    "scan_many",
    "DiffReport",
    "RewriteMode",
    "RewriteReport",
    "compare",
    "parse_mode",
    "rewrite_file",
    "FileReport",
    "ModelFile",
    "PyscanError",
    "TensorInfo",
    "TensorReport",
    "__version__",
    "available_isas",
    "current_isa",
    "open",
    "scan",
]
