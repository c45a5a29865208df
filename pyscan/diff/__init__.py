"""Comparing two GGUF files: tensors by name and value, and their metadata."""

from pyscan.diff.compare import DiffReport, MetadataDifference, TensorDiff, diff, diff_files

__all__ = ["DiffReport", "MetadataDifference", "TensorDiff", "diff", "diff_files"]
