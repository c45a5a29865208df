"""``pyscan diff A B``: compare two models tensor by tensor and value by value.

A and B are GGUF or safetensors files, or Hugging Face checkpoint folders (config.json and
model.safetensors or its sharded index).  A checkpoint against a GGUF file pairs names through
gguf-py's TensorNameMap and says, per pair, how B came from A (``relations``).

Exit statuses: 0 the files hold the same tensors, values and metadata; 1 they
differ; 2 a file is invalid or unreadable, or the options are wrong (one line
on stderr, ``pyscan: PATH: what is wrong``, never a traceback).

Byte order alone is no difference: values are compared in native order, so a
big-endian twin of a little-endian file is identical (the report notes it).

``--json`` prints one strict-JSON object (``DiffReport.to_dict()``): path_a,
path_b, identical, summary, endianness_a/_b, version_a/_b,
n_tensors_compared, n_tensors_differ, n_values_differ, max_abs_diff, notes,
metadata_differences (key, status, type_a, type_b, value_a, value_b) and
tensors, one per selected name (A's order, then names only in B): name,
status (identical, different, only_in_a, only_in_b, type_changed,
shape_changed, not_compared), type, shape, type_a, type_b, shape_a, shape_b,
n_elements, compared ("values", "bytes" or null), n_values_differ,
n_nan_mismatch, n_bytes_differ, max_abs_diff, max_rel_diff, rmse; source (A's
name), relations (identical, exact-cast, rounded, shifted, permuted,
transposed, quantized, different), how (the rounding), shift, note,
max_abs_error, rel_rmse, snr_db, cosine, first_diff_index, error_histogram
(against A, in float64).  Metadata values are JSON values (an array: its first
16 items, with count_a / count_b).
Non-finite floats are the strings "inf", "-inf", "nan"; null means the
field does not apply (e.g. value statistics of a byte-compared tensor).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from pyscan import native
from pyscan.cli.options import (
    ArgumentParser,
    HelpFormatter,
    add_picture_options,
    add_tensor_globs,
    check_outputs,
    write_pictures,
)
from pyscan.cli.outcome import EXIT_DIFFERENT, emit, guarded
from pyscan.diff.compare import diff
from pyscan.diff.render import render
from pyscan.errors import PyscanError
from pyscan.parser.checkpoint import checkpoint_files, is_checkpoint

EXIT_IDENTICAL = 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pyscan diff",
        description="Compare two models (GGUF or safetensors files, Hugging Face checkpoint folders): tensors "
        "by name (through gguf-py's TensorNameMap across formats), type, shape and value; metadata by key.",
        epilog="exit status: 0 identical; 1 different; 2 invalid or unreadable file, an output refused, "
        "or bad options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("a", metavar="A", help="the reference: a GGUF or safetensors file, or a checkpoint folder")
    parser.add_argument("b", metavar="B", help="the model compared with it (e.g. the GGUF converted from A)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    add_tensor_globs(parser, "compare")
    add_picture_options(parser, "a self-contained HTML page of the differences", "the difference map")
    parser.add_argument("--force", action="store_true", help="replace an existing --html / --plot FILE")
    return parser


def run(args: argparse.Namespace) -> int:
    native.current_isa()  # a bad PYSCAN_ISA is a usage error, as for every command
    if args.force and not (args.html or args.plot):
        raise PyscanError(None, "--force goes with --html FILE or --plot FILE", "usage")
    check_outputs([args.html, args.plot], _input_files(args.a, args.b), args.force)
    report = diff(args.a, args.b, include=args.include, exclude=args.exclude)
    write_pictures(args, report)
    try:
        emit(json.dumps(report.to_dict(), allow_nan=False) if args.json else render(report))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `pyscan diff A B | head`): the answer is still the exit status.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_IDENTICAL if report.identical else EXIT_DIFFERENT


def _input_files(*paths: str) -> list[str]:
    """The files the diff reads: each path, and for a checkpoint folder its config, index and shards."""
    return [name for path in paths for name in ([path, *checkpoint_files(path)] if is_checkpoint(path) else [path])]


def main_diff(argv: Sequence[str]) -> int:
    """Run `pyscan diff` on argv (the words after "diff"); returns the exit status.

    As with any argparse tool, --help and option errors raise SystemExit (0 and 2).
    """
    args = build_parser().parse_args(list(argv))  # argparse exits 2 on bad options
    return guarded(lambda: run(args))
