"""Pictures of a report: a self-contained HTML page and a PNG precision map.

``render_html(report, gguf)`` / ``render_diff_html(diff_report)`` return the
page; ``write_html(path, report, gguf)`` writes either atomically;
``write_png(report, path)`` draws the map with matplotlib (``pyscan[plot]``).
Imported only when a picture is asked for: it needs numpy.
"""

from pyscan.visual.files import write_html
from pyscan.visual.html import render_diff_html, render_html
from pyscan.visual.mantissa import bit_histogram, tensor_histogram
from pyscan.visual.plot import write_png

__all__ = ["bit_histogram", "render_diff_html", "render_html", "tensor_histogram", "write_html", "write_png"]
