"""``pyscan PATH...``: many files, one record each, as they finish."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from pyscan import json_text
from pyscan.batch.discover import discover_all
from pyscan.batch.records import BatchResult, file_identity
from pyscan.batch.report_file import ReportAppender, already_done, check_report_path, load_finished
from pyscan.batch.runner import connect, scan_files, unreadable_folder
from pyscan.cli.options import check_outputs
from pyscan.cli.outcome import EXIT_DIFFERENT as EXIT_SOME_FAILED
from pyscan.cli.outcome import EXIT_OK, emit
from pyscan.errors import PyscanError
from pyscan.formatting import plural
from pyscan.scan.verdict import verdict
from pyscan.text import safe_line


def run_batch(args: argparse.Namespace) -> int:
    paths, unreadable = discover_all(args.paths)
    if not paths and not unreadable:  # only folders were given, and they hold no model: most likely a wrong path
        where = args.paths[0] if len(args.paths) == 1 else None
        raise PyscanError(
            where,
            "is a folder with no .gguf or .safetensors files in it"
            if where
            else "none of these folders holds a .gguf or .safetensors file",
            "usage",
        )
    if args.resume:
        check_report_path(args.resume, [*args.paths, *paths])
    check_outputs([], paths, force=False)  # stdout redirected into a model
    finished = load_finished(args.resume) if args.resume else {}
    todo = [p for p in paths if not already_done(p, finished)]
    skipped = len(paths) - len(todo)
    client = connect(args.dask_scheduler) if args.dask_scheduler else None
    report_file = ReportAppender(args.resume) if args.resume else None
    failed: list[BatchResult] = []

    def record(result: BatchResult) -> None:
        if report_file is not None:
            report_file.append(result.to_dict())  # one whole line, flushed, even if the job is killed next
        emit(json_text.dumps(result.to_dict()) if args.jsonl else _summary_line(result))
        sys.stdout.flush()
        if not result.ok:
            failed.append(result)

    try:
        for folder, reason in unreadable:
            record(unreadable_folder(folder, reason))
        with _files_bar(todo, args) as advance, contextlib.closing(
            scan_files(todo, jobs=args.jobs, client=client, include=args.include, exclude=args.exclude,
                      threads=args.threads)
        ) as results:  # fmt: skip
            for result in results:
                record(result)
                advance(result)
    finally:
        if report_file is not None:
            report_file.close()
        if client is not None:
            client.close()
    _print_totals(len(todo), skipped, failed, args)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _summary_line(result: BatchResult) -> str:
    if result.report is None:
        return safe_line(f"{result.path}: FAILED: {result.error}")
    return safe_line(f"{result.path}: {plural(result.report.n_tensors, 'tensor')}. {verdict(result.report)}")


def _print_totals(scanned: int, skipped: int, failed: list[BatchResult], args: argparse.Namespace) -> None:
    # With --jsonl, stdout is for records only: the totals go to stderr.
    out = sys.stderr if args.jsonl else sys.stdout
    parts = [f"{plural(scanned, 'file')} scanned", f"{len(failed):,} failed"]
    if skipped:
        parts.append(f"{skipped:,} skipped (already in {args.resume})")
    print(safe_line(", ".join(parts) + (":" if failed else "")), file=out)
    for result in failed:
        print(safe_line(f"  {result.path}: {result.error}"), file=out)


class _NoBar:
    def __enter__(self) -> Any:
        return lambda result: None

    def __exit__(self, *exc: object) -> None:
        return None


def _files_bar(paths: list[str], args: argparse.Namespace) -> Any:
    """A bar over files and bytes on a terminal (never with --quiet)."""
    if args.quiet or not sys.stderr.isatty() or not paths:
        return _NoBar()
    return _Bar(paths)


class _Bar:
    def __init__(self, paths: list[str]) -> None:
        self.total_files = len(paths)
        self.total_bytes = sum(file_identity(p)[0] or 0 for p in paths)
        self.done = 0

    def __enter__(self) -> Any:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            delay=1.0,
            leave=False,
            desc="files 0/" + str(self.total_files),
        )

        def advance(result: BatchResult) -> None:
            self.done += 1
            self.bar.set_description(f"files {self.done}/{self.total_files}", refresh=False)
            self.bar.update(result.size or 0)

        return advance

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
