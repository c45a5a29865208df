"""``--html R`` for eval and experiment: one self-contained page (no script, no fetched asset).

eval: the table of candidates.  experiment: its table and an inline SVG chart of the KL divergence
(mean) against the share of values each mode changed, both on log scales.  The page is written
with pyscan.writer.atomic's rules: never over an input, only over a regular file, only with --force.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from pyscan.visual.svg import esc

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.note { color: #555; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
"""


def page(title: str, body: list[str]) -> str:
    return "\n".join(
        ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
         f"<style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>", *body, "</body></html>", ""]
    )  # fmt: skip


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
    return "<table>\n<tr>" + head + "</tr>\n" + "\n".join(lines) + "\n</table>"


def setting(report: dict[str, Any]) -> str:
    base = report["base"]
    return (
        f'<p>base: <code>{esc(base["path"])}</code>, PPL {base["ppl"]:.4f}; {report["n_chunks"]} chunks of '
        f'{report["ctx"]} tokens from {esc(report["text"])}, {report["n_tokens_scored"]:,} tokens scored.</p>'
    )


def eval_page(report: dict[str, Any]) -> str:
    header = ["candidate", "weights", "PPL", "ln(PPL ratio)", "KLD mean", "KLD median", "KLD p99", "KLD max",
              "RMS Δp", "same top"]  # fmt: skip
    rows = [
        [os.path.basename(c["path"]), "identical" if c["weights_identical"] else "differ", f"{c['ppl']:.4f}",
         f"{c['ln_ppl_ratio']:+.5f} ± {c['ln_ppl_ratio_uncertainty']:.5f}",
         f"{c['kld_mean']:.6f} ± {c['kld_uncertainty']:.6f}", f"{c['kld_median']:.6f}", f"{c['kld_p99']:.6f}",
         f"{c['kld_max']:.6f}", f"{100 * c['rms_dp']:.3f}%", f"{100 * c['same_top_p']:.2f}%"]
        for c in report["candidates"]
    ]  # fmt: skip
    body = [setting(report), html_table(header, rows)]
    for c in report["candidates"]:
        for output in c.get("outputs", []):
            verdict = "identical" if output["identical"] else f"differ from token {output['first_difference']}"
            body.append(
                f"<p>{esc(os.path.basename(c['path']))}: {esc(repr(output['prompt']))} → {esc(verdict)}: "
                f"{esc(repr(output['text']))}</p>"
            )
    body.append('<p class="note">KLD: KL(base ‖ candidate) per scored token, in nats (pyscan eval).</p>')
    return page("pyscan eval", body)


def experiment_page(report: dict[str, Any]) -> str:
    header = ["mode", "values changed", "max |Δ|", "max rel", "PPL", "ΔPPL", "KLD mean", "KLD p99", "same top"]
    rows = [
        [m["mode"], f"{m['changed']:,} of {m['n_elements']:,}", f"{m['max_abs_error']:.3g}",
         f"{m['max_rel_error']:.3g}", f"{m['ppl']:.4f}", f"{m['delta_ppl']:+.4f}", f"{m['kld_mean']:.6f}",
         f"{m['kld_p99']:.6f}", f"{100 * m['same_top_p']:.2f}%"]
        for m in report["modes"]
    ]  # fmt: skip
    body = [setting(report), kld_chart(report["modes"]), html_table(header, rows)]
    unchanged = [m["mode"] for m in report["modes"] if m["changed"] == 0]
    if unchanged:
        body.append(f"<p>{esc(', '.join(unchanged))}: no value changed (the weights carry no more precision).</p>")
    return page("pyscan experiment", body)


WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 640, 360, 70, 50, 20, 30
ZERO_GAP = 24  # pixels between the axis, where a 0 sits, and the first decade of the log scale


def kld_chart(modes: Sequence[dict[str, Any]]) -> str:
    """KLD mean (y) against the share of values changed (x), log-log; a 0 sits on its axis, apart from the decades."""
    points = [(m["changed"] / m["n_elements"] if m["n_elements"] else 0.0, m["kld_mean"], m["mode"]) for m in modes]
    points = [p for p in points if math.isfinite(p[1])]  # an infinite or NaN KLD has no place on a log axis
    xs = [x for x, _, _ in points if x > 0] or [1.0]
    ys = [y for _, y, _ in points if y > 0] or [1e-6]
    x_lo, x_hi = decades(min(xs), max(xs))
    y_lo, y_hi = decades(min(ys), max(ys))

    def px(x: float) -> float:
        if x <= 0:
            return LEFT
        t = (math.log10(x) - x_lo) / (x_hi - x_lo)
        return LEFT + ZERO_GAP + t * (WIDTH - LEFT - RIGHT - ZERO_GAP)

    def py(y: float) -> float:
        if y <= 0:
            return HEIGHT - BOTTOM
        t = (math.log10(y) - y_lo) / (y_hi - y_lo)
        return HEIGHT - BOTTOM - ZERO_GAP - t * (HEIGHT - BOTTOM - TOP - ZERO_GAP)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             'aria-label="KL divergence against values changed">',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>']  # fmt: skip
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">0</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM + 4}" text-anchor="end">0</text>')
    for e in range(x_lo, x_hi + 1):
        parts.append(f'<text x="{px(10.0**e):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">1e{e}</text>')
    for e in range(y_lo, y_hi + 1):
        parts.append(f'<text x="{LEFT - 6}" y="{py(10.0**e) + 4:.1f}" text-anchor="end">1e{e}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
                 "share of F32 values changed</text>")  # fmt: skip
    parts.append(f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2})">KLD mean (nats)</text>')  # fmt: skip
    for x, y, mode in points:
        cx, cy = px(x), py(y)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="#c0392b"><title>{esc(mode)}: '
                     f"{100 * x:.3g}% changed, KLD {y:.6g}</title></circle>")  # fmt: skip
        parts.append(f'<text x="{cx + 8:.1f}" y="{cy - 6:.1f}">{esc(mode)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def decades(lo: float, hi: float) -> tuple[int, int]:
    """Whole powers of ten around [lo, hi], at least one decade apart."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return a, max(b, a + 1)


def write_page(path: str, text: str, inputs: Sequence[str], force: bool) -> None:
    """Publish text at path by the safe writer's rules (checked again here: the run may have taken minutes)."""
    from pyscan.errors import PyscanError
    from pyscan.writer.atomic import AtomicFile, check_target

    check_target(path, inputs, force, force_option="--force")
    with AtomicFile(path, force, inputs=inputs) as out:
        try:
            with open(out.fd, "w", encoding="utf-8", closefd=False) as handle:
                handle.write(text)
        except OSError as exc:
            raise PyscanError(path, f"cannot write: {exc.strerror or exc}", "io") from None
        out.publish()
