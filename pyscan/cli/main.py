"""``pyscan FILE``: report the precision a GGUF model's weights carry.

Exit statuses: 0 success; 2 the file is invalid, unreadable, or the options
are wrong.  Errors are one line on stderr, naming the file; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import pyscan
from pyscan import native
from pyscan.errors import PyscanError
from pyscan.scan import scan

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
exit status: 0 success; 2 invalid or unreadable file, or bad options.
environment: PYSCAN_ISA=scalar|sse2|avx2|avx512|neon forces a kernel path.
JSON schema: see README.md ("JSON report")."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyscan",
        description="Report how much precision the weights of a GGUF model really carry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="the GGUF file to scan")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--per-tensor", action="store_true", help="also list every tensor")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="scan only tensors whose name matches GLOB (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip tensors whose name matches GLOB (repeatable)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", help="threads for large scans (default: all cores)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="build a small TinyLlama-shaped Q4_K_M model with gguf-py and scan it"
    )
    parser.add_argument("--version", action="store_true", help="print the version and kernel paths")
    return parser


def version_line() -> str:
    return (
        f"pyscan {pyscan.__version__} (kernel {native.current_isa()}; available: {', '.join(native.available_isas())})"
    )


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.version:
        print(version_line())
        return EXIT_OK
    if args.threads is not None and args.threads < 1:
        raise PyscanError(None, "--threads must be at least 1", "usage")
    native.current_isa()  # a bad PYSCAN_ISA is a usage error before any work
    if args.demo:
        if args.file:
            raise PyscanError(None, "--demo takes no FILE", "usage")
        from pyscan.demo import write_tinyllama_like

        with tempfile.TemporaryDirectory(prefix="pyscan-demo-") as folder:
            path = os.path.join(folder, "tinyllama-1.1b-chat-q4_k_m-demo.gguf")
            write_tinyllama_like(path)
            return report(path, args)
    if not args.file:
        parser.print_usage(sys.stderr)
        raise PyscanError(None, "a FILE to scan is required (or --demo)", "usage")
    return report(args.file, args)


def report(path: str, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = scan(path, include=args.include, exclude=args.exclude, threads=args.threads)
    elapsed = time.perf_counter() - started
    if args.json:
        json.dump(result.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        from pyscan.cli.render import render

        print(render(result, per_tensor=args.per_tensor, elapsed=elapsed))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args, parser)
    except PyscanError as exc:
        print(f"pyscan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("pyscan: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `pyscan FILE | head`): not an error worth a word.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
