"""``pyscan eval BASE CANDIDATE...``: what a change to the weights does to the model's predictions.

Perplexity of each model and, per candidate against BASE, the KL divergence of the next-token
distributions, Δp of the correct token and the share of positions with the same top token, over
llama-perplexity's chunks (see pyscan.eval.protocol).  Inference runs in llama-cpp-python
processes (the optional extra `pyscan[eval]`).  Exit statuses: 0 done; 2 an error (one line on
stderr: a missing extra, an engine crash, a text too short, another vocabulary, bad options).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pyscan.arguments import MAX_THREADS
from pyscan.cli.options import ArgumentParser, HelpFormatter, file_name
from pyscan.cli.outcome import EXIT_OK, emit, guarded
from pyscan.errors import PyscanError
from pyscan.small_files import NotARegularFile, read_at_most
from pyscan.text import quote

# A pipe may never end (--text <(yes)): read at most this much.  Far above any text worth scoring here:
# llama.cpp's tokenizer took over 200 s for a 1.5 MB line (the byte-token model of tests/test_eval.py).
MAX_TEXT_BYTES = 256 << 20


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    """The options eval and experiment share."""
    parser.add_argument(
        "--text", type=file_name, metavar="FILE", help="UTF-8 text to score (default: a sample bundled with pyscan)"
    )
    parser.add_argument("--ctx", type=int, default=512, metavar="N", help="tokens per chunk (default 512)")
    parser.add_argument("--chunks", type=int, default=None, metavar="K", help="score at most K chunks")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="engine threads (default: all cores)")
    parser.add_argument(
        "--prompt", action="append", default=[], metavar="TEXT", help="also compare greedy continuations (repeatable)"
    )
    parser.add_argument("--tokens", type=int, default=32, metavar="N", help="tokens per --prompt continuation")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--html", type=file_name, metavar="R", help="also write the report as a self-contained HTML page R"
    )
    parser.add_argument(
        "--force", action="store_true", help="let --html (experiment: and -o DIR's variants) replace existing files"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pyscan eval",
        description="Perplexity and KL divergence of candidate models against a base model (llama.cpp).",
        epilog="needs pip install 'pyscan[eval]'. exit status: 0 done; 2 an error or bad options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("base", metavar="BASE", help="the reference GGUF model")
    parser.add_argument("candidates", nargs="+", metavar="CANDIDATE", help="GGUF models to compare with BASE")
    add_eval_options(parser)
    return parser


def read_text(path: str | None) -> tuple[str, str]:
    """(text, its name for messages): --text FILE, or the bundled sample."""
    if path is None:
        from importlib.resources import files

        return files("pyscan.eval").joinpath("sample.txt").read_text(encoding="utf-8"), "the bundled sample text"
    try:
        # a pipe is fine (--text <(zcat corpus.gz)); a FIFO that no one writes reads as empty
        data = read_at_most(path, MAX_TEXT_BYTES, pipes=True)
        if len(data) > MAX_TEXT_BYTES:
            raise PyscanError(path, f"is over {MAX_TEXT_BYTES >> 20} MiB: too long a text to score", "usage")
        return data.decode("utf-8"), path
    except NotARegularFile as exc:
        raise PyscanError(path, f"is {exc.kind}, not a file or a pipe; --text takes a text file", "usage") from None
    except UnicodeDecodeError:
        raise PyscanError(path, "not UTF-8 text", "format") from None
    except OSError as exc:
        raise PyscanError(path, f"cannot read: {exc.strerror or exc}", "io") from None


def inputs_of(args: argparse.Namespace, models: Sequence[str]) -> list[str]:
    """What the command reads, which no output may replace: the models and the --text file."""
    return [*models, *([args.text] if args.text else [])]


def check_options(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    """Refuse bad numbers, and an --html target that is an input or exists without --force, before any work."""
    from pyscan import native

    native.current_isa()  # a bad PYSCAN_ISA is a usage error, as for every command
    if args.chunks is not None and args.chunks < 1:
        raise PyscanError(None, "--chunks must be at least 1", "usage")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise PyscanError(None, f"--threads must be between 1 and {MAX_THREADS}", "usage")
    if not 1 <= args.tokens <= 4096:
        raise PyscanError(None, "--tokens must be between 1 and 4096", "usage")
    for prompt in args.prompt:
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # bytes the locale could not decode reach Python as lone surrogates
            raise PyscanError(None, f"--prompt {quote(prompt, 60)} is not valid UTF-8", "usage") from None
    from pyscan.cli.options import check_outputs

    check_outputs([args.html], inputs, args.force)


def evaluate_with_progress(args: argparse.Namespace, base: str, candidates: Sequence[str]) -> dict[str, Any]:
    from pyscan.eval.runner import EvalRequest, evaluate

    text, text_name = read_text(args.text)
    request = EvalRequest(
        base=base, candidates=candidates, text=text, text_name=text_name, ctx=args.ctx, max_chunks=args.chunks,
        threads=args.threads, prompts=args.prompt, n_tokens=args.tokens,
    )  # fmt: skip
    if args.json or args.quiet or not sys.stderr.isatty():
        return evaluate(request)
    from tqdm import tqdm

    with tqdm(desc="chunks", unit="chunk", file=sys.stderr, leave=False, delay=1.0) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        request.on_chunk = advance
        return evaluate(request)


def run(args: argparse.Namespace) -> int:
    inputs = inputs_of(args, [args.base, *args.candidates])
    check_options(args, inputs)
    report = evaluate_with_progress(args, args.base, args.candidates)
    if args.html:
        from pyscan.eval.page import eval_page, write_page

        write_page(args.html, eval_page(report), inputs, args.force)
    if args.json:
        from pyscan import json_text

        emit(json_text.dumps(report))
    else:
        from pyscan.eval.render import render_eval

        emit(render_eval(report))
    return EXIT_OK


def main_eval(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))  # argparse exits 2 on bad options
    return guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main_eval(sys.argv[1:]))
