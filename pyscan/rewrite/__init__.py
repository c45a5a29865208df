"""Fake quantization: the rewrite modes and the engine that runs them over tensors."""

from pyscan.rewrite.engine import RewriteReport, TensorChange, rewrite_tensors, select_targets
from pyscan.rewrite.modes import RewriteMode, parse_mode

__all__ = ["RewriteMode", "RewriteReport", "TensorChange", "parse_mode", "rewrite_tensors", "select_targets"]
