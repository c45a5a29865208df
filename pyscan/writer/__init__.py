"""Writing results: a rewritten copy beside the target, renamed into place only once checked; or in place."""

from pyscan.writer.output import rewrite_file, rewrite_model

__all__ = ["rewrite_file", "rewrite_model"]
