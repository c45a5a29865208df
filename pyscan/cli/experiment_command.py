"""``pyscan experiment MODEL``: fake-quantize MODEL once per --mode and evaluate every variant against it.

One table row per mode: what the rewrite changed in the weights (values, max |Δ|, relative
error) beside what it changed in the predictions (PPL, ΔPPL, KLD mean and p99, same top token).
Exit statuses: 0 done; 2 an error (one line on stderr) or bad options.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pyscan.cli.eval_command import add_eval_options, check_options, inputs_of, read_text
from pyscan.cli.options import ArgumentParser, HelpFormatter, file_name
from pyscan.cli.outcome import EXIT_OK, emit, guarded


def build_parser() -> argparse.ArgumentParser:
    from pyscan.eval.experiment import DEFAULT_MODES

    parser = ArgumentParser(
        prog="pyscan experiment",
        description="Write fake-quantized variants of MODEL and measure each one's effect (pyscan eval).",
        epilog=f"default modes: {' '.join(DEFAULT_MODES)}. needs pip install 'pyscan[eval]'. "
        "exit status: 0 done; 2 an error or bad options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="the GGUF model to rewrite and compare against")
    parser.add_argument(
        "--mode", action="append", default=[], metavar="KIND=FMT",
        help="truncate=bf16|fp16|mN, round=bf16|fp16|mN, fake-quant=int8|int4[:G]|q8_0|q4_0|q4_1|q5_0|q5_1 "
        "(repeatable)",
    )  # fmt: skip
    parser.add_argument("--include", action="append", default=[], metavar="GLOB", help="rewrite only these tensors")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave these tensors unchanged")
    parser.add_argument(
        "-o", "--output", type=file_name, metavar="DIR", help="keep the variants in DIR (default: a temporary folder)"
    )
    add_eval_options(parser)
    return parser


def render(report: dict[str, Any]) -> str:
    from pyscan.eval.render import table
    from pyscan.text import printable

    lines = [
        f"base: {printable(report['base']['path'])}",
        f"  {report['n_chunks']} chunks of {report['ctx']} tokens from {printable(report['text'])}, "
        f"{report['n_tokens_scored']:,} tokens scored; PPL {report['base']['ppl']:.4f}",
        "",
    ]
    header = ["mode", "values changed", "max |Δ|", "max rel", "PPL", "ΔPPL", "KLD mean", "KLD p99", "same top"]
    rows = [
        [m["mode"], f"{m['changed']:,} of {m['n_elements']:,}",
         f"{m['max_abs_error']:.3g}", f"{m['max_rel_error']:.3g}",
         f"{m['ppl']:.4f}", f"{m['delta_ppl']:+.4f}", f"{m['kld_mean']:.6f}", f"{m['kld_p99']:.6f}",
         f"{100 * m['same_top_p']:.2f}%"]
        for m in report["modes"]
    ]  # fmt: skip
    lines += table(header, rows)
    unchanged = [m["mode"] for m in report["modes"] if m["changed"] == 0]
    if unchanged:
        lines.append(f"\n{', '.join(unchanged)}: no value changed (the weights already carry no more precision).")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pyscan.eval.experiment import DEFAULT_MODES, run_experiment, variant_paths
    from pyscan.eval.runner import EvalRequest

    inputs = inputs_of(args, [args.model])
    check_options(args, inputs)
    if args.output and args.html and os.path.isdir(args.output):  # the page may not be a variant (checked again)
        from pyscan.cli.options import check_outputs

        check_outputs([*variant_paths(args.model, args.mode or DEFAULT_MODES, args.output), args.html], inputs, True)
    text, text_name = read_text(args.text)
    request = EvalRequest(
        base=args.model, candidates=(), text=text, text_name=text_name, ctx=args.ctx, max_chunks=args.chunks,
        threads=args.threads, prompts=args.prompt, n_tokens=args.tokens,
    )  # fmt: skip
    report = run_experiment(
        args.model, args.mode or DEFAULT_MODES, args.include, args.output, request, args.force, args.exclude
    )
    if args.html:
        from pyscan.eval.page import experiment_page, write_page

        write_page(args.html, experiment_page(report), inputs, args.force)
    if args.json:
        from pyscan import json_text

        emit(json_text.dumps(report))
    else:
        emit(render(report))
    return EXIT_OK


def main_experiment(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    return guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main_experiment(sys.argv[1:]))
