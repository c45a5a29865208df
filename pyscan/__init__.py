"""pyscan: how much precision do a GGUF model's weights really carry?

``pyscan.open(path)`` parses a file (metadata, tensor infos, zero-copy numpy
views); ``pyscan.scan(path)`` counts, tensor by tensor, the values that are
exactly representable in BF16 / FP16, and returns a report with ``to_dict()``.
Everything wrong with an input raises ``pyscan.PyscanError``.
"""

from pyscan.errors import PyscanError
from pyscan.native import available_isas, current_isa
from pyscan.parser import GGUFFile, TensorInfo
from pyscan.parser import open_gguf as open
from pyscan.scan import FileReport, TensorReport, scan

__version__ = "0.1.0"  # the package version: pyproject.toml reads it from here

__all__ = [
    "FileReport",
    "GGUFFile",
    "PyscanError",
    "TensorInfo",
    "TensorReport",
    "__version__",
    "available_isas",
    "current_isa",
    "open",
    "scan",
]
