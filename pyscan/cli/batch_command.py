"""``pyscan PATH...``: many files, one record each, as they finish."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from pyscan.batch.discover import discover
from pyscan.batch.records import BatchResult, already_done, file_identity, load_finished
from pyscan.batch.runner import connect, scan_many
from pyscan.cli.outcome import EXIT_DIFFERENT as EXIT_SOME_FAILED
from pyscan.cli.outcome import EXIT_OK
from pyscan.errors import PyscanError
from pyscan.scan.verdict import verdict


def run_batch(args: argparse.Namespace) -> int:
    paths = discover(args.paths)
    if not paths:  # only folders were given, and they hold no model: most likely a wrong path
        where = args.paths[0] if len(args.paths) == 1 else None
        raise PyscanError(
            where,
            "is a folder with no .gguf or .safetensors files in it"
            if where
            else "none of these folders holds a .gguf or .safetensors file",
            "usage",
        )
    finished = load_finished(args.resume) if args.resume else {}
    todo = [p for p in paths if not already_done(p, finished)]
    skipped = len(paths) - len(todo)
    client = connect(args.dask_scheduler) if args.dask_scheduler else None
    report_file = _open_for_append(args.resume) if args.resume else None
    failed: list[BatchResult] = []
    try:
        with _files_bar(todo, args) as advance:
            for result in scan_many(
                todo, jobs=args.jobs, client=client, include=args.include, exclude=args.exclude, threads=args.threads
            ):
                line = json.dumps(result.to_dict())
                if report_file is not None:
                    report_file.write(line + "\n")
                    report_file.flush()  # one whole record per line, even if the job is killed next
                if args.jsonl:
                    print(line, flush=True)
                else:
                    print(_summary_line(result), flush=True)
                if not result.ok:
                    failed.append(result)
                advance(result)
    finally:
        if report_file is not None:
            report_file.close()
        if client is not None:
            client.close()
    _print_totals(len(todo), skipped, failed, args)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _open_for_append(report_path: str) -> IO[str]:
    """Open the resume report for appending, starting on a fresh line if a killed job left half of one."""
    try:
        report = open(report_path, "a+", encoding="utf-8")  # noqa: SIM115 - closed by run_batch
        if report.tell() > 0:
            report.seek(report.tell() - 1)
            if report.read(1) != "\n":
                report.write("\n")
        return report
    except OSError as exc:
        raise PyscanError(report_path, f"cannot append to the report: {exc.strerror or exc}", "io") from None


def _summary_line(result: BatchResult) -> str:
    if result.report is None:
        return f"{result.path}: FAILED: {result.error}"
    return f"{result.path}: {result.report.n_tensors:,} tensors. {verdict(result.report)}"


def _print_totals(scanned: int, skipped: int, failed: list[BatchResult], args: argparse.Namespace) -> None:
    # With --jsonl, stdout is for records only: the totals go to stderr.
    out = sys.stderr if args.jsonl else sys.stdout
    parts = [f"{scanned:,} files scanned", f"{len(failed):,} failed"]
    if skipped:
        parts.append(f"{skipped:,} skipped (already in {args.resume})")
    print(", ".join(parts) + (":" if failed else ""), file=out)
    for result in failed:
        print(f"  {result.path}: {result.error}", file=out)


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
