"""The HTML around the pictures: one self-contained page, tables and legends.

Everything is inline (CSS in a <style>, SVG in the body, no script), so the
page opens from disk or an e-mail attachment with nothing fetched.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyscan import __version__
from pyscan.visual.cells import Heatmap, Scale
from pyscan.visual.svg import esc

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; color: #1f2328; background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 48px; }
h1 { font-size: 20px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
.sub { color: #57606a; margin: 0 0 2px; overflow-wrap: anywhere; }
.verdict { margin: 14px 0 0; padding: 10px 14px; background: #f6f8fa; border-left: 4px solid #08306b;
           border-radius: 4px; }
.warning { margin: 10px 0 0; padding: 8px 14px; background: #fff8c5; border-left: 4px solid #bf8700; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0 0; }
.facts div { display: flex; flex-direction: column; }
.facts dt { color: #57606a; font-size: 12px; }
.facts dd { margin: 0; font-weight: 600; }
.scroll { overflow-x: auto; }
.legend { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 10px 28px; margin: 4px 0 10px;
          font-size: 12px; color: #3d444d; }
.scale { max-width: 260px; }
.scale .bar { width: 220px; height: 12px; border: 1px solid #bbb; border-radius: 2px; }
.scale .ticks { display: flex; justify-content: space-between; width: 222px; }
.swatch { display: inline-flex; align-items: center; gap: 6px; margin-right: 14px; }
.swatch i { width: 14px; height: 12px; border-radius: 2px; display: inline-block; }
.hint { color: #57606a; font-size: 12px; margin: 0 0 8px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .cell text { font-size: 10px; pointer-events: none; }
svg .col-label, svg .row-label { fill: #3d444d; }
svg .cell:hover rect { stroke: #111; stroke-width: 1.5; }
svg .tick { font-size: 9px; fill: #57606a; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.name { white-space: normal; overflow-wrap: anywhere; max-width: 460px;
          font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.share { display: inline-block; height: 10px; border-radius: 2px; vertical-align: middle; }
.charts { display: flex; flex-wrap: wrap; gap: 14px 22px; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #3d444d; max-width: 240px; overflow-wrap: anywhere; }
figcaption code { font-size: 11px; }
details > summary { cursor: pointer; margin: 8px 0; color: #0550ae; }
footer { margin-top: 36px; color: #8c959f; font-size: 12px; }
"""


def page(title: str, body: Sequence[str]) -> str:
    """A complete HTML document; title is escaped here, body parts are markup already."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body><main>",
            *body,
            f"<footer>pyscan {esc(__version__)}</footer>",
            "</main></body>",
            "</html>",
            "",
        ]
    )


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[int] = (),
    name: int = 0,
    markup: Sequence[int] = (),
) -> str:
    """A table of text, escaped here except in the `markup` columns (built markup already).

    Columns listed in numeric are right-aligned; column `name` may wrap.
    """

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ' class="name"' if i == name else ""

    def cell(i: int, text: str) -> str:
        return f"<td{cls(i)}>{text if i in markup else esc(text)}</td>"

    head = "".join(f"<th{cls(i) if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def facts(items: Sequence[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items) + "</dl>"


def _scale(scale: Scale) -> str:
    gradient = ", ".join(f"{color} {100 * x:g}%" for x, color in scale.stops)
    # Ticks are spread evenly, as the scales' ticks are.
    ticks = "".join(f"<span>{esc(text)}</span>" for _, text in scale.ticks)
    return (
        f'<div class="scale"><div>{esc(scale.title)}</div>'
        f'<div class="bar" style="background: linear-gradient(to right, {gradient})"></div>'
        f'<div class="ticks">{ticks}</div></div>'
    )


def legend(heatmap: Heatmap) -> str:
    swatches = "".join(
        f'<span class="swatch"><i style="background:{esc(fill)}"></i>{esc(text)}</span>'
        for fill, text in heatmap.swatches
    )
    return (
        '<div class="legend">'
        + "".join(_scale(scale) for scale in heatmap.scales)
        + (f"<div><div>{esc(heatmap.swatch_title)}</div>{swatches}</div>" if swatches else "")
        + "</div>"
    )
