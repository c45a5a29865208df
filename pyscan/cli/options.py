"""Options shared by `pyscan` and `pyscan diff`: tensor globs and pictures."""

from __future__ import annotations

import argparse
from typing import Any


def add_tensor_globs(parser: argparse.ArgumentParser, verb: str) -> None:
    """--include / --exclude: which tensors the command (verb: "scan", "compare") looks at."""
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"{verb} only tensors whose name matches GLOB (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip tensors whose name matches GLOB (repeatable; applied after --include)",
    )


def add_picture_options(parser: argparse.ArgumentParser, page: str, image: str) -> None:
    parser.add_argument("--html", metavar="FILE", help=f"also write {page}")
    parser.add_argument("--plot", metavar="FILE", help=f"also write {image} as a PNG (pyscan[plot])")


def write_pictures(args: argparse.Namespace, report: Any, gguf: Any = None) -> None:
    """Write --html / --plot for a scan report (with its open file, for the histograms) or a diff report."""
    if not (args.html or args.plot):
        return
    from pyscan.visual import write_html, write_png  # numpy and friends: only when asked for

    if args.html:
        write_html(args.html, report, gguf)
    if args.plot:
        write_png(report, args.plot)
