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

    Also refuses a stdout or stderr redirected into one of the inputs (`pyscan m.gguf --json >> m.gguf`).
    """
    from pyscan.writer.atomic import check_target, is_same_file

    named = [path for path in outputs if path]
    for i, path in enumerate(named):
        check_target(path, inputs, force, same_as_input, force_option="--force")
        if any(is_same_file(path, other) or path == other for other in named[:i]):
            raise PyscanError(path, "is named as two outputs of one command", "usage")
    refusal = redirect_refusal(inputs)
    if refusal:
        raise PyscanError(None, refusal, "usage")


def redirect_refusal(inputs: Sequence[str], outputs: Sequence[str] = ()) -> str | None:
    """Why pyscan must stop if stdout or stderr is redirected into one of inputs (`2>> m.gguf`) or of
    outputs (`--html r.html 2>> r.html`: a refusal would grow the file it promises to keep), else None.

    Each stream that is such a file is pointed at /dev/null first, so that nothing more (an error, a
    warning, a progress bar, Python's own last words) reaches that file.  The refusal is for the
    caller to print on stderr; when stderr was the file it is written on stdout here instead, unless
    stdout is one too: then nothing is written anywhere, and the exit status alone says it.
    """
    # An output is compared as named, not through a link: `-o link` to /proc/self/fd/1 is the link rule's.
    out_in, err_in = stream_is_one_of(1, inputs), stream_is_one_of(2, inputs)
    out = out_in or stream_is_one_of(1, outputs, follow=False)
    err = err_in or stream_is_one_of(2, outputs, follow=False)
    if not (out or err):
        return None
    into = "an input file" if (err_in if err else out_in) else "a file this command writes"
    refusal = f"standard {'error' if err else 'output'} is redirected into {into}; refusing to write into it"
    for fd, into_file in ((1, out), (2, err)):
        if into_file:
            _silence(fd)
    if err and not out:
        _write_line(1, f"pyscan: {refusal}")
    return refusal


SUBCOMMANDS = ("diff", "eval", "experiment")
SUBCOMMAND_OPERANDS = {"diff": "A B", "eval": "BASE CANDIDATE...", "experiment": "MODEL"}


def misplaced_subcommand(parser: argparse.ArgumentParser, arguments: Sequence[str]) -> str | None:
    """The refusal for a subcommand named after an option (`pyscan -q diff A B`), else None.

    The scan's parser says which words are files (`--include diff`: a value, not a file); only the
    first file counts, and a file of that name that exists is scanned (`pyscan -q diff` with ./diff).
    """
    if not any(word in SUBCOMMANDS for word in arguments[1:]):  # the common case: no second parse
        return None
    paths = parser.parse_known_args(arguments)[0].paths
    first = paths[0] if paths else None
    if first not in SUBCOMMANDS or os.path.lexists(first):
        return None
    if "--" in arguments[: arguments.index(first)]:  # `pyscan -q -- diff`: a file name by request
        return None
    return f"{first}: a subcommand comes first: pyscan {first} {SUBCOMMAND_OPERANDS[first]} [options]"


def redirect_into_named_file(arguments: Sequence[str]) -> bool:
    """Whether stdout or stderr is redirected into a file the command line names (an input, --resume,
    --text=FILE, an -o / --html / --plot target); if so the refusal is already written where it is
    safe (see redirect_refusal).

    Run before argparse or any command may write, so it cannot know which words are files: every
    word but the subcommand's name is compared (one that only shares a name with the redirect
    target, `--include t 2> t`, is refused too).  A folder's files and a checkpoint's shards are not
    on the command line: check_outputs compares the streams with those, once they are known.
    """
    if not (_is_regular(1) or _is_regular(2)):  # a terminal, a pipe, /dev/null: no argument to stat
        return False
    words = arguments[1:] if arguments[:1] and arguments[0] in SUBCOMMANDS else arguments
    named: list[str] = []
    outputs: list[str] = []
    previous = ""
    for word in words:
        option, _, value = word.partition("=")
        if _is_output_option(previous):
            outputs.append(word)
        elif _is_output_option(option) and value:
            outputs.append(value)
        else:
            named.append(value if word.startswith("-") and value else word)
        previous = word
    refusal = redirect_refusal(named, outputs)
    if refusal is None:
        return False
    _write_line(2, f"pyscan: {refusal}")  # /dev/null by now, if stderr was the file
    return True


# The options whose value is a file pyscan writes (not --resume: it is read first, then appended to).
OUTPUT_OPTIONS = ("--output", "--html", "--plot")


def _is_output_option(word: str) -> bool:
    """-o, or --output / --html / --plot, or a prefix argparse takes for one (--out)."""
    return word == "-o" or (len(word) > 2 and word.startswith("--") and any(o.startswith(word) for o in OUTPUT_OPTIONS))


def stream_is_one_of(fd: int, paths: Sequence[str], follow: bool = True) -> bool:
    """Whether file descriptor fd (1: stdout, 2: stderr) is redirected into one of these files (`>> model.gguf`).

    follow=False compares a symbolic link itself, never the file it points to."""
    try:
        out = os.fstat(fd)
    except OSError:
        return False
    if not stat.S_ISREG(out.st_mode):
        return False
    for path in paths:
        try:
            info = os.stat(path, follow_symlinks=follow)
        except (OSError, ValueError):  # ValueError: a NUL in an argument
            continue
        if (info.st_dev, info.st_ino) == (out.st_dev, out.st_ino):
            return True
    return False


def _is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _silence(fd: int) -> None:
    """Point fd at /dev/null: whatever Python or a library writes there later reaches no input."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no /dev/null (a bare chroot): fd stays open, never closed, so no file we open becomes it
        return
    os.dup2(null, fd)
    os.close(null)


def _write_line(fd: int, line: str) -> None:
    from pyscan.text import safe_line

    try:
        os.write(fd, (safe_line(line) + "\n").encode("utf-8", "backslashreplace"))
    except OSError:  # nowhere else to say it: the exit status still does
        return


def write_pictures(args: argparse.Namespace, report: Any, gguf: Any = None, groups: Any = None) -> None:
    """Write --html / --plot for a scan report (with its open file, for the histograms) or a diff report."""
    if not (args.html or args.plot):
        return
    from pyscan.visual import write_html, write_png  # numpy and friends: only when asked for
    from pyscan.visual.plot import check_png

    if args.plot:  # a map refused (too many tensors, no matplotlib) must not leave the page published
        check_png(report, args.plot)
    if args.html:
        write_html(args.html, report, gguf, force=args.force, groups=groups)
    if args.plot:
        write_png(report, args.plot, force=args.force)
