"""How every report writes numbers, sizes, shapes and tables for people (the text report, diff, HTML).

Below the command line on purpose: cli/, diff/ and visual/ all format alike without importing
each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyscan.text import printable, shorten

CELL_LIMIT = 256  # characters of a table cell: a safetensors name can be megabytes long

# (column title, count key) for the precision columns of the tables.
PRECISION_COLUMNS = (("BF16-exact", "bf16_exact"), ("FP16-exact", "fp16_exact"),
                     ("w-1 BF16-exact", "low16_zero_minus_one"))  # fmt: skip


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    text = f"{100 * fraction:.2f}%"
    # Never round a partial share up to a clean 100% or down to 0%.
    if text == "100.00%" and fraction < 1:
        return ">99.99%"
    if text == "0.00%" and fraction > 0:
        return "<0.01%"
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to fit; the first `left` columns left-aligned, the rest right-aligned.

    Cells are escaped and bounded (names come from the file) before the columns are measured.
    """
    rows = [[shorten(printable(cell), CELL_LIMIT) for cell in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def shape_text(shape: Sequence[int] | None) -> str:
    """Dimensions innermost first, as GGUF stores them: 4096x32000; 'scalar' for none, '?' if unknown."""
    return "?" if shape is None else "x".join(map(str, shape)) or "scalar"


def terminal_text(lines: Sequence[str]) -> str:
    """The report's lines joined, every one escaped: a name from the file cannot forge a line or move the cursor."""
    return "\n".join(map(printable, lines))


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 file', '2 files', '1,024 tensors': the count with its noun, singular only for exactly one."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"
