"""--html R for eval and experiment: the page holds the report's figures, and the safe writer's refusals hold.

The refusals come before any engine starts, so these tests need neither llama-cpp-python nor a real
model; the page of a real run is checked in test_eval.py.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import pyscan_cli
from models import write

from pyscan.errors import PyscanError
from pyscan.eval.page import eval_page, experiment_page, write_page

BASE = {"path": "/m/base.gguf", "ppl": 12.3456}
SETTING = {"base": BASE, "text": "the bundled sample text", "ctx": 128, "n_chunks": 2, "n_tokens_scored": 126}


def candidate(path: str, kld: float, identical: bool) -> dict[str, Any]:
    return {"path": path, "ppl": 12.5, "ln_ppl_ratio": 0.0125, "ln_ppl_ratio_uncertainty": 0.002, "kld_mean": kld,
            "kld_uncertainty": kld / 10, "kld_median": kld / 2, "kld_p90": kld, "kld_p95": kld, "kld_p99": 3 * kld,
            "kld_p999": 4 * kld, "kld_max": 5 * kld, "mean_dp": 0.0, "rms_dp": 0.0123, "same_top_p": 0.984,
            "weights_identical": identical}  # fmt: skip


def mode(name: str, changed: int, kld: float) -> dict[str, Any]:
    return {"mode": name, "changed": changed, "n_elements": 10_000, "max_abs_error": 0.5, "max_rel_error": 0.01,
            "output": None, "ppl": 12.4, "delta_ppl": 0.0544, "kld_mean": kld, "kld_p99": 2 * kld,
            "same_top_p": 0.99, "outputs_identical": None}  # fmt: skip


class Page(HTMLParser):
    """Table cells, SVG circles (cx, cy, title) and any reference to something outside the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.circles: list[tuple[float, float]] = []
        self.titles: list[str] = []
        self.external: list[str] = []
        self.tags: set[str] = set()
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.external += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "circle":
            self.circles.append((float(values["cx"] or 0), float(values["cy"] or 0)))
        self._in = tag if tag in ("td", "title") else None

    def handle_data(self, data: str) -> None:
        if self._in == "td":
            self.cells.append(data)
        elif self._in == "title" and self.circles:
            self.titles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def test_eval_page_holds_the_table() -> None:
    report = SETTING | {"candidates": [candidate("/m/same.gguf", 0.0, True), candidate("/m/bf16.gguf", 0.00123, False)]}
    page = Page(eval_page(report))
    assert {"same.gguf", "bf16.gguf", "identical", "differ", "0.000000 ± 0.000000", "0.001230 ± 0.000123",
            "0.003690", "98.40%", "1.230%", "+0.01250 ± 0.00200"} <= set(page.cells)  # fmt: skip
    assert page.external == [] and "script" not in page.tags


def test_experiment_page_charts_kld_against_values_changed() -> None:
    modes = [mode("truncate=bf16", 0, 0.0), mode("round=fp16", 100, 0.0002), mode("fake-quant=int4:32", 9000, 0.05)]
    text = experiment_page(SETTING | {"modes": modes})
    page = Page(text)
    assert {"truncate=bf16", "0 of 10,000", "9,000 of 10,000", "0.050000", "0.100000", "+0.0544"} <= set(page.cells)
    assert len(page.circles) == 3
    (x0, y0), (x1, y1), (x2, y2) = page.circles
    assert x0 < x1 < x2  # more values changed: further right
    assert y0 > y1 > y2  # larger KLD: higher up (SVG y grows downwards)
    assert any("fake-quant=int4:32" in t and "90% changed" in t for t in page.titles)
    assert "no value changed" in text and page.external == [] and "script" not in page.tags


def test_an_infinite_or_nan_kld_is_left_off_the_chart() -> None:
    modes = [mode("round=fp16", 100, 0.0002), mode("m0", 9000, float("inf")), mode("int4", 500, float("nan"))]
    page = Page(experiment_page(SETTING | {"modes": modes}))
    assert len(page.circles) == 1 and "m0" in page.cells and "int4" in page.cells


def test_a_mode_name_cannot_inject_markup() -> None:
    text = experiment_page(SETTING | {"modes": [mode("<script>x</script>", 1, 0.1)]})
    assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    write(path, [("t.weight", np.ones(64, dtype=np.float32), None)])
    return path


@pytest.mark.parametrize("command", ["eval", "experiment"])
def test_html_refuses_an_input_and_an_existing_file_before_any_work(command: str, model: Path, tmp_path: Path) -> None:
    models = [str(model), str(model)] if command == "eval" else [str(model)]
    before = model.read_bytes()
    into_input = pyscan_cli(command, *models, "--html", str(model), "--force")
    assert into_input.returncode == 2 and "input" in into_input.stderr
    assert len(into_input.stderr.strip().splitlines()) == 1, into_input.stderr
    assert model.read_bytes() == before
    existing = tmp_path / "r.html"
    existing.write_text("keep me")
    refused = pyscan_cli(command, *models, "--html", str(existing))
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert existing.read_text() == "keep me"
    folder = pyscan_cli(command, *models, "--html", str(tmp_path), "--force")
    assert folder.returncode == 2 and "folder" in folder.stderr


def test_write_page_replaces_only_with_force(tmp_path: Path, model: Path) -> None:
    target = tmp_path / "r.html"
    write_page(str(target), "<p>one</p>", [str(model)], force=False)
    assert target.read_text() == "<p>one</p>"
    with pytest.raises(PyscanError, match="already exists"):
        write_page(str(target), "<p>two</p>", [str(model)], force=False)
    write_page(str(target), "<p>two</p>", [str(model)], force=True)
    assert target.read_text() == "<p>two</p>"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(PyscanError, match="not a regular file"):
        write_page(str(tmp_path / "fifo"), "x", [], force=True)
    assert [p.name for p in tmp_path.iterdir() if ".pyscan-" in p.name] == []


def test_an_evaluation_without_candidates_is_a_usage_error(model: Path) -> None:
    from pyscan.eval.runner import EvalRequest, evaluate

    with pytest.raises(PyscanError, match="at least one candidate") as caught:
        evaluate(EvalRequest(base=str(model), candidates=(), text="some text", text_name="t"))
    assert caught.value.kind == "usage"
