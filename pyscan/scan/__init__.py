"""Scanning: run the kernels over a parsed file and build the report."""

from pyscan.scan.report import FileReport, TensorReport
from pyscan.scan.scanner import scan, scan_file
from pyscan.scan.verdict import verdict

__all__ = ["FileReport", "TensorReport", "scan", "scan_file", "verdict"]
