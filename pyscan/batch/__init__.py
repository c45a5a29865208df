"""Batch jobs: many files, one JSON record each, in parallel processes or on a Dask cluster, resumable."""

from pyscan.batch.discover import discover
from pyscan.batch.records import BatchResult
from pyscan.batch.report_file import load_finished
from pyscan.batch.runner import scan_many

__all__ = ["BatchResult", "discover", "load_finished", "scan_many"]
