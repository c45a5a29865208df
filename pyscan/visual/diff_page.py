"""The diff page's relations section: one row per pair that is not identical, worst first, a column per relation."""

from __future__ import annotations

from pyscan.diff.compare import DiffReport, TensorDiff
from pyscan.diff.relations import RELATION_WORDS
from pyscan.visual.page import table
from pyscan.visual.svg import esc

MAX_ROWS = 2_000  # rows on the page; --json lists every pair


def _number(x: float | None, text: str) -> str:
    return "-" if x is None else text.format(x)


def _row(t: TensorDiff, words: list[str]) -> list[str]:
    e = t.errors
    types = t.type if t.type_a == t.type_b else f"{t.type_a} -> {t.type_b}"
    marks = ["✓" if w in t.relations else "" for w in words]
    if e is None:
        numbers = ["-"] * 4
    else:
        numbers = [_number(e.rel_rmse, "{:.3%}"), _number(e.max_abs if e.n else None, "{:.6g}"),
                   _number(e.snr_db, "{:.1f}"), _number(e.cosine, "{:.6f}")]  # fmt: skip
    return [t.name, "" if t.source == t.name else t.source, types, *marks, *numbers, t.remark or ""]


def relations_section(report: DiffReport) -> list[str]:
    pairs = [t for t in report.tensors if t.relations and t.relations != ["identical"]]
    if not pairs:
        return []
    pairs.sort(key=lambda t: -t.worst())
    present = {w for t in pairs for w in t.relations}
    words = [w for w in RELATION_WORDS if w in present]
    headers = ["name", "source", "type", *words, "rel RMSE", "max err", "SNR dB", "cosine", "note"]
    numeric = tuple(range(3 + len(words), 7 + len(words)))
    rows = [_row(t, words) for t in pairs[:MAX_ROWS]]
    out = [
        f"<h2>Relations ({len(pairs):,} pairs, worst first)</h2>",
        f'<p class="verdict">{esc(report.relations_summary)}</p>',
        table(headers, rows, numeric=numeric),
    ]
    if len(pairs) > MAX_ROWS:
        out.append(f'<p class="hint">The first {MAX_ROWS:,} of {len(pairs):,} rows; --json lists them all.</p>')
    return out
