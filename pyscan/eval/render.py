"""The eval report as text: one table row per candidate, then the continuations when asked."""

from __future__ import annotations

import os
from typing import Any

from pyscan.text import printable  # file names reach the terminal escaped


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def render_eval(report: dict[str, Any]) -> str:
    base = report["base"]
    lines = [
        f"base: {printable(base['path'])}",
        f"  {report['n_chunks']} chunks of {report['ctx']} tokens from {printable(report['text'])}, "
        f"{report['n_tokens_scored']:,} tokens scored; PPL {base['ppl']:.4f}",
        "",
    ]
    header = ["candidate", "weights", "PPL", "ln(PPL ratio)", "KLD mean", "KLD median", "KLD p99", "KLD max",
              "RMS Δp", "same top"]  # fmt: skip
    rows = []
    for c in report["candidates"]:
        rows.append([
            printable(os.path.basename(c["path"])),
            "identical" if c["weights_identical"] else "differ",
            f"{c['ppl']:.4f}",
            f"{c['ln_ppl_ratio']:+.5f} ± {c['ln_ppl_ratio_uncertainty']:.5f}",
            f"{c['kld_mean']:.6f} ± {c['kld_uncertainty']:.6f}",
            f"{c['kld_median']:.6f}",
            f"{c['kld_p99']:.6f}",
            f"{c['kld_max']:.6f}",
            f"{100 * c['rms_dp']:.3f}%",
            f"{100 * c['same_top_p']:.2f}%",
        ])  # fmt: skip
    lines += table(header, rows)
    for c in report["candidates"]:
        for output in c.get("outputs", []):
            name = printable(os.path.basename(c["path"]))
            if output["identical"]:
                lines.append(f"\n{name}: {output['prompt']!r} -> identical: {output['text']!r}")
            else:
                lines.append(
                    f"\n{name}: {output['prompt']!r} -> differ from token {output['first_difference']}:\n"
                    f"  base:      {output['base_text']!r}\n  candidate: {output['text']!r}"
                )
    return "\n".join(lines)
