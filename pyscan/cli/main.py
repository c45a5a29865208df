"""``pyscan FILE``: report the precision a GGUF model's weights carry, or fake-quantize them.

Exit statuses: 0 success; 1 ``pyscan diff`` found differences; 2 the file is
invalid, unreadable, or the options are wrong; 130 interrupted.  Errors are
one line on stderr, naming the file; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import pyscan
from pyscan import native
from pyscan.arguments import MAX_THREADS
from pyscan.cli.gc_pause import paused_gc
from pyscan.cli.options import (
    ArgumentParser,
    HelpFormatter,
    add_picture_options,
    add_tensor_globs,
    check_outputs,
    file_name,
    misplaced_subcommand,
    redirect_into_named_file,
    write_pictures,
)
from pyscan.cli.outcome import EXIT_ERROR, EXIT_OK, emit, guarded
from pyscan.cli.progress import progress_bar
from pyscan.cli.streams import reopen_closed_streams
from pyscan.errors import PyscanError
from pyscan.parser import open_model
from pyscan.rewrite import select_targets
from pyscan.rewrite.modes import RewriteMode, optional_mode
from pyscan.scan.groups import group_tensors
from pyscan.scan.scanner import scan_file, scanned_bytes

EPILOG = """\
examples:
  pyscan model.gguf                               the report: types, precision per pattern, verdict
  pyscan model.gguf --truncate bf16 -o out.gguf   a fake-quantized copy (IN is never modified)
  pyscan diff model.gguf out.gguf                 what changed (exit 0 identical, 1 different)
  pyscan eval model.gguf out.gguf                 does it matter: PPL, KL divergence (pyscan[eval])
  pyscan experiment model.gguf                    write and eval one variant per --mode, in one step
  pyscan model.gguf --header-only                 the header alone, even of a cut download
  pyscan /models --jsonl --jobs 4 --resume r.jsonl   a collection, one record per file

how fake quantization works: every mode applies to F32 tensors (--include/--exclude choose which),
  toward zero (--truncate) or to nearest, ties to even (--round); --fake-quant int8|int4 is symmetric
  absmax per row or per --group-size G values; --fake-quant q8_0|q4_0|q4_1|q5_0|q5_1 round-trips
  through that ggml block format (gguf.quants).  A NaN always stays a NaN.  Every mode but the block
  formats is idempotent: running it again changes nothing, so an interrupted --in-place run is
  finished by re-running it (the block formats are refused in place).

exit status: 0 success; 1 diff found differences or a batch had failures; 2 invalid or unreadable file,
an output refused, or bad options; 130 interrupted.
environment: PYSCAN_ISA=scalar|sse2|avx2|avx512|neon forces a kernel path.
JSON schema: see README.md ("JSON report")."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pyscan",
        description="Report how much precision the weights of a GGUF or safetensors model really carry.\n"
        "Compare two models: pyscan diff A B; measure the effect of a change: pyscan eval BASE CANDIDATE...;\n"
        "both at once, per fake-quantization mode: pyscan experiment MODEL (each has its own --help).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="GGUF or safetensors files, or folders to search for *.gguf / *.safetensors",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument(
        "--header-only",
        action="store_true",
        help="show the metadata and tensor table only, scanning nothing (works on a cut download)",
    )
    parser.add_argument("--per-tensor", action="store_true", help="also list every tensor")
    add_picture_options(parser, "a self-contained HTML report (precision map)", "the precision map")
    add_tensor_globs(parser, "scan")
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", help="threads for large scans (default: all cores)"
    )
    rewrite = parser.add_argument_group("fake quantization")
    rewrite.add_argument("--truncate", metavar="FORMAT", help="bf16, fp16 or mN: round toward zero")
    rewrite.add_argument("--round", metavar="FORMAT", help="bf16, fp16 or mN: round to nearest even")
    rewrite.add_argument(
        "--fake-quant", metavar="FMT",
        help="int8 or int4: symmetric absmax quantization; q8_0, q4_0, q4_1, q5_0, q5_1: a ggml block format",
    )  # fmt: skip
    rewrite.add_argument(
        "--group-size", type=int, metavar="G", help="--fake-quant groups of G values along a row (the row, if longer)"
    )
    rewrite.add_argument("-o", "--output", type=file_name, metavar="OUT", help="write the rewritten model to OUT")
    rewrite.add_argument("--in-place", action="store_true", help="rewrite FILE itself")
    rewrite.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    rewrite.add_argument("--force", action="store_true", help="replace an existing OUT (or --html / --plot FILE)")
    rewrite.add_argument(
        "--fsync",
        action="store_true",
        help="with -o: make OUT durable (survive a power cut) before renaming it into place",
    )
    batch = parser.add_argument_group("many files")
    batch.add_argument("--jsonl", action="store_true", help="one JSON record per file per line, as each finishes")
    batch.add_argument("--jobs", type=int, default=1, metavar="N", help="scan N files at once, in N processes")
    batch.add_argument(
        "--resume",
        type=file_name,
        metavar="REPORT.jsonl",
        help="skip files REPORT.jsonl already holds (same size and mtime); append new records to it",
    )
    batch.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="run one task per file on this Dask cluster (pip install 'pyscan[dask]')",
    )
    parser.add_argument(
        "--demo", action="store_true", help="build a small TinyLlama-shaped Q4_K_M model with gguf-py and scan it"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="store_true", help="print the version and kernel paths")
    return parser


def version_line() -> str:
    return (
        f"pyscan {pyscan.__version__} (kernel {native.current_isa()}; available: {', '.join(native.available_isas())})"
    )


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.version:
        emit(version_line())
        return EXIT_OK
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise PyscanError(None, f"--threads must be between 1 and {MAX_THREADS}", "usage")
    native.current_isa()  # a bad PYSCAN_ISA is a usage error before any work
    if args.demo:
        if args.paths:
            raise PyscanError(None, "--demo takes no FILE", "usage")
        _refuse(_given(args, "truncate", "round", "fake_quant", "group_size", *SINGLE_FILE_ONLY, *BATCH_ONLY), "--demo")
        import tempfile  # only the demo needs it: keep it out of every other start-up

        from pyscan.demo import write_tinyllama_like

        with tempfile.TemporaryDirectory(prefix="pyscan-demo-") as folder:
            path = os.path.join(folder, "tinyllama-1.1b-chat-q4_k_m-demo.gguf")
            write_tinyllama_like(path)
            return report(path, args)
    if not args.paths:
        raise PyscanError(None, "error: a FILE to scan is required, or --demo (see pyscan --help)", "usage")
    if args.jobs < 1:
        raise PyscanError(None, "--jobs must be at least 1", "usage")
    mode = optional_mode(args.truncate, args.round, args.fake_quant, args.group_size)
    if is_batch(args):
        where = args.paths[0] if len(args.paths) == 1 else None  # name the folder, as every error does
        if mode is not None:
            raise PyscanError(where, f"--{mode.kind} rewrites one file at a time, not a folder or a list", "usage")
        if args.html or args.plot or args.per_tensor or args.json:
            raise PyscanError(
                where, "--html, --plot, --per-tensor and --json describe one file; for many files use --jsonl", "usage"
            )
        given = _given(args, *SINGLE_FILE_ONLY, "force")
        if given:
            raise PyscanError(
                where, f"{given[0]} goes with one file's report, not a batch (--jsonl, --jobs, --resume, "
                "--dask-scheduler, a folder or several files)", "usage",
            )  # fmt: skip
        from pyscan.cli.batch_command import run_batch

        return run_batch(args)
    if mode is not None:
        if args.header_only:
            raise PyscanError(None, "--header-only scans nothing; it cannot go with a rewrite", "usage")
        return rewrite(args.paths[0], mode, args)
    if args.output or args.in_place or args.dry_run or args.fsync:
        raise PyscanError(
            None, "-o, --in-place, --dry-run and --fsync go with --truncate, --round or --fake-quant", "usage"
        )
    if args.force and not (args.html or args.plot):
        raise PyscanError(None, "--force goes with -o OUT, --html FILE or --plot FILE", "usage")
    if args.header_only:
        return header(args.paths[0], args)
    return report(args.paths[0], args)


def header(path: str, args: argparse.Namespace) -> int:
    if args.html or args.plot or args.per_tensor or args.include or args.exclude:
        raise PyscanError(None, "--header-only scans nothing: it takes only --json", "usage")
    check_outputs([], [path], False)  # `pyscan m.gguf --header-only >> m.gguf`
    from pyscan.cli.header import header_dict, render_header

    with open_model(path, header_only=True) as model:
        if args.json:
            print_json(header_dict(model))
        else:
            emit(render_header(model))
    return EXIT_OK


# Options (argparse dest) that describe one file's scan or rewrite, and those only a batch takes.
SINGLE_FILE_ONLY = ("output", "in_place", "dry_run", "fsync", "header_only")
BATCH_ONLY = ("jsonl", "jobs", "resume", "dask_scheduler")


def _given(args: argparse.Namespace, *names: str) -> list[str]:
    """The options among names that the command line set (--jobs counts from 2), as spelled there."""

    def unset(name: str) -> bool:
        value = getattr(args, name)
        return value is None or value is False or (name == "jobs" and value == 1)

    return ["-o" if name == "output" else "--" + name.replace("_", "-") for name in names if not unset(name)]


def _refuse(given: list[str], option: str) -> None:
    if given:
        raise PyscanError(None, f"{given[0]} does not go with {option}", "usage")


def is_batch(args: argparse.Namespace) -> bool:
    """Several paths, a folder, or any batch option: one record per file instead of one report."""
    return (
        len(args.paths) > 1
        or os.path.isdir(args.paths[0])
        or args.jsonl
        or args.jobs > 1
        or args.resume is not None
        or args.dask_scheduler is not None
    )


def show_progress(args: argparse.Namespace) -> bool:
    """A bar only for people: not with --json or --quiet (and progress_bar checks for a terminal)."""
    return not (args.json or args.quiet)


def rewrite(path: str, mode: RewriteMode, args: argparse.Namespace) -> int:
    if sum(map(bool, (args.output, args.in_place, args.dry_run))) != 1:
        raise PyscanError(None, f"--{mode.kind} needs exactly one of -o OUT, --in-place or --dry-run", "usage")
    if (args.force or args.fsync) and not args.output:
        raise PyscanError(None, "--force and --fsync go with -o OUT", "usage")
    if args.html or args.plot:
        # The page describes a scan; a rewrite's report is its table (or --json).  Scan OUT for its page.
        raise PyscanError(None, "--html and --plot describe a scan, not a rewrite: run pyscan OUT --html FILE", "usage")
    # rewrite_model checks OUT again, but in Python's words (force=True): check it first in the command line's.
    check_outputs([args.output], [path], args.force, "is the input file; use --in-place to rewrite it")
    from pyscan.writer import rewrite_model

    with open_model(path, writable=args.in_place) as model:  # parsed once: bar total, rewrite, checks
        total = sum(4 * t.n_elements for t in select_targets(model, args.include, args.exclude))
        with progress_bar(total, str(mode), show_progress(args)) as progress:
            result = rewrite_model(
                model,
                mode,
                output=args.output,
                in_place=args.in_place,
                force=args.force,
                include=args.include,
                exclude=args.exclude,
                threads=args.threads,
                progress=progress,
                durable=args.fsync,
            )
    if args.json:
        print_json(result.to_dict())
    else:
        from pyscan.cli.render import render_rewrite

        emit(render_rewrite(result))
    return EXIT_OK


@paused_gc()  # a record per tensor, 200,000 in a big file: see cli/gc_pause.py
def report(path: str, args: argparse.Namespace) -> int:
    check_outputs([args.html, args.plot], [path], args.force)
    started = time.perf_counter()
    with open_model(path) as gguf:
        total = scanned_bytes(gguf, args.include, args.exclude)
        with progress_bar(total, "scanning", show_progress(args)) as progress:
            result = scan_file(gguf, args.include, args.exclude, args.threads, progress)
        elapsed = time.perf_counter() - started
        # The page and the text report group the names alike: once (0.12 s on 200,000 tensors).
        groups = group_tensors(result.tensors) if args.html and not args.json else None
        write_pictures(args, result, gguf, groups)  # the mantissa histograms read the open file
    if args.json:
        from pyscan.scan.report_json import report_json

        emit(report_json(result))
    else:
        from pyscan.cli.render import render

        emit(render(result, per_tensor=args.per_tensor, elapsed=elapsed, groups=groups))
    return EXIT_OK


def print_json(document: dict[str, Any]) -> None:
    from pyscan import json_text  # only --json needs json: keep it out of every other start-up

    # dumps, not dump: json.dump always takes the pure-Python encoder (11 s for 200,000 tensors).
    emit(json_text.dumps(document))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if redirect_into_named_file(arguments):  # `pyscan m.gguf 2>> m.gguf`: before argparse or a bar may write
        return EXIT_ERROR
    if arguments[:1] == ["diff"]:
        from pyscan.cli.diff_command import main_diff

        return main_diff(arguments[1:])
    if arguments[:1] == ["eval"]:
        from pyscan.cli.eval_command import main_eval

        return main_eval(arguments[1:])
    if arguments[:1] == ["experiment"]:
        from pyscan.cli.experiment_command import main_experiment

        return main_experiment(arguments[1:])
    parser = build_parser()
    misplaced = misplaced_subcommand(parser, arguments)
    if misplaced is not None:  # `pyscan -q diff A B` would scan "diff" as a file, and exit 1 as "different"
        print(f"pyscan: {misplaced}", file=sys.stderr)
        return EXIT_ERROR
    args = parser.parse_args(arguments)
    return guarded(lambda: run(args, parser))


def entry() -> NoReturn:
    """The `pyscan` command: main(), then exit without tearing the interpreter down.

    Freeing every module at exit costs ~5 ms, a tenth of pyscan's fixed cost on a small
    file, and buys nothing: by now every file is closed and OUT is renamed into place.
    """
    if 1 in reopen_closed_streams():  # `pyscan m.gguf >&-`: a report with nowhere to go
        if not redirect_into_named_file(sys.argv[1:]):  # `>&- 2>> m.gguf`: not even this line goes there
            print("pyscan: standard output is closed; redirect it to /dev/null to discard the report", file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_ERROR)
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader went away (pyscan FILE | head): as guarded() treats it
    except OSError as exc:
        print(f"pyscan: cannot write the report: {exc.strerror or exc}", file=sys.stderr)
        code = EXIT_ERROR
    sys.stderr.flush()
    os._exit(code)
