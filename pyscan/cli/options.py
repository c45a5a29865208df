"""Options shared by `pyscan` and `pyscan diff`: tensor globs and pictures."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pyscan.errors import PyscanError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help layout, with the terminal measured by os rather than shutil.

    argparse makes a formatter for every add_argument() and sizes it with
    shutil.get_terminal_size, and importing shutil (bz2 and lzma with it) costs
    ~3 ms of every start-up on an idle machine (`python -X importtime -c "import shutil"`;
    21-37 ms cumulative on this 2-core machine under load), though the width only
    matters for --help.  terminal_columns does what shutil.get_terminal_size does.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)  # argparse's own margin


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with an option error as one line: `pyscan: error: ... (see pyscan --help)`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def terminal_columns() -> int:
    """$COLUMNS, else the width of the terminal on stdout, else 80 (as shutil.get_terminal_size)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):  # not a terminal, or no file descriptor
            columns = 0
    return columns if columns > 0 else 80


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


def file_name(value: str) -> str:
    """An option's file or folder name: an empty one (--html "") is an error, never "not given"."""
    if not value:
        raise argparse.ArgumentTypeError("an empty name names no file")
    return value


def add_picture_options(parser: argparse.ArgumentParser, page: str, image: str) -> None:
    parser.add_argument("--html", type=file_name, metavar="FILE", help=f"also write {page}")
    parser.add_argument("--plot", type=file_name, metavar="FILE", help=f"also write {image} as a PNG (pyscan[plot])")


def check_outputs(
    outputs: Sequence[str | None],
    inputs: Sequence[str],
    force: bool,
    same_as_input: str = "is an input of this command",
) -> None:
    """Refuse, before any work, output targets that are inputs, not regular files, repeated, or exist without --force.

    Also refuses a stdout redirected into one of the inputs (`pyscan m.gguf --json >> m.gguf`).
    """
    from pyscan.writer.atomic import check_target, is_same_file

    named = [path for path in outputs if path]
    for i, path in enumerate(named):
        check_target(path, inputs, force, same_as_input, force_option="--force")
        if any(is_same_file(path, other) or path == other for other in named[:i]):
            raise PyscanError(path, "is named as two outputs of one command", "usage")
    if stdout_is_one_of(inputs):
        raise PyscanError(None, "standard output is redirected into an input file; refusing to write into it", "usage")


def stdout_is_one_of(paths: Sequence[str]) -> bool:
    """Whether standard output is redirected into one of these files (`>> model.gguf`)."""
    try:
        out = os.fstat(1)
    except OSError:
        return False
    if not stat.S_ISREG(out.st_mode):
        return False
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (out.st_dev, out.st_ino):
            return True
    return False


def write_pictures(args: argparse.Namespace, report: Any, gguf: Any = None, groups: Any = None) -> None:
    """Write --html / --plot for a scan report (with its open file, for the histograms) or a diff report."""
    if not (args.html or args.plot):
        return
    from pyscan.visual import write_html, write_png  # numpy and friends: only when asked for

    if args.html:
        write_html(args.html, report, gguf, force=args.force, groups=groups)
    if args.plot:
        write_png(report, args.plot, force=args.force)
