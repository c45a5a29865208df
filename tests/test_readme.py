"""The README against real runs: its Python snippets run verbatim, and its JSON schema is what --json prints.

The schema tables are found by their `<!-- schema: NAME -->` markers; each row's first cell names
its keys in backticks.  The reports come from files written with gguf.GGUFWriter.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from cli_runner import pyscan_cli
from models import write, write_mixed

from pyscan.demo import write_tinyllama_like

README = Path(__file__).resolve().parent.parent / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    body = text.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_every_python_snippet_runs_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(readme())
    assert len(blocks) >= 3  # the Library section's
    write_tinyllama_like(tmp_path / "model.gguf")  # as the README says to make it
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        assert block.startswith("import pyscan\n"), block[:80]  # each one stands alone
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102  # the README's own code
    assert (tmp_path / "out.gguf").exists()


def test_the_snippets_comments_are_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the snippets' comments promise, checked on the same demo model and with the same calls."""
    import pyscan

    write_tinyllama_like(tmp_path / "model.gguf")
    monkeypatch.chdir(tmp_path)
    assert pyscan.scan("model.gguf").to_dict()["verdict"]["kind"] == "bf16-exact"
    with pyscan.open("model.gguf") as model:
        tokens: Any = model.metadata["tokenizer.ggml.tokens"].value
        assert len(tokens) == 32_000 and tokens.to_list()[:3] == ["tok0", "tok1", "tok2"]
        with pytest.raises(TypeError, match="to_list"):
            tokens.to_numpy()
    with pytest.raises(pyscan.PyscanError, match="needs one of") as caught:
        pyscan.parse_mode()
    assert caught.value.kind == "usage"
    mode = pyscan.parse_mode(truncate="bf16")
    pyscan.rewrite_file("model.gguf", mode, output="out.gguf")
    assert pyscan.compare("model.gguf", "out.gguf").summary == "identical"
    with pytest.raises(pyscan.PyscanError) as caught:
        pyscan.rewrite_file("model.gguf", mode, output="out.gguf", force=False)
    assert str(caught.value) == "out.gguf: already exists (pass force=True to replace it)"
    assert "--force" not in str(caught.value) and caught.value.kind == "usage"
    cli = pyscan_cli(str(tmp_path / "model.gguf"), "--truncate", "bf16", "-o", str(tmp_path / "out.gguf"))
    assert cli.returncode == 2 and "(pass --force to replace it)" in cli.stderr  # the command line keeps its option


# ---- the JSON schema ---------------------------------------------------------------------------


def schema(name: str) -> dict[str, str]:
    """key -> its row's meaning, from the README table after `<!-- schema: name -->`."""
    text = section(readme(), "JSON report")
    table = text.split(f"<!-- schema: {name} -->\n", 1)[1].split("\n\n", 1)[0]
    keys: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        for key in re.findall(r"`([^`]+)`", cells[0]):
            keys[key] = cells[2]
    return keys


def plus_one_file(path: Path) -> None:
    w = np.linspace(0.25, 200.0, 64, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    write(path, [("blk.0.norm.weight", w + np.float32(1), None), ("blk.0.b.weight", w, None)])


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("schema")
    write_tinyllama_like(folder / "demo.gguf")
    write_mixed(folder / "mixed.gguf")  # F32, F16, BF16 scanned; F64, I32, Q8_0 not
    plus_one_file(folder / "plus-one.gguf")
    out = []
    for name in ("demo.gguf", "mixed.gguf", "plus-one.gguf"):
        result = pyscan_cli(str(folder / name), "--json")
        assert result.returncode == 0, result.stderr
        out.append(json.loads(result.stdout))
    return out


def test_every_top_level_key_is_documented_and_present(reports: list[dict[str, Any]]) -> None:
    documented = set(schema("report"))
    for report in reports:
        assert set(report) == documented


def test_every_tensor_key_is_documented_and_each_appears(reports: list[dict[str, Any]]) -> None:
    documented = set(schema("tensor"))
    seen: set[str] = set()
    for report in reports:
        for tensor in report["tensors"]:
            assert set(tensor) <= documented, set(tensor) - documented
            seen |= set(tensor)
    assert seen == documented


def test_the_verdict_object_is_as_documented(reports: list[dict[str, Any]], tmp_path: Path) -> None:
    rows = schema("verdict")
    kinds = set(re.findall(r"`([a-z0-9-]+)`", rows["kind"]))
    explanations = set(re.findall(r"`([a-z0-9-]+)`", rows["tensors"]))
    assert {"bf16-exact", "bf16-plus-one", "full-f32", "no-float-tensors"} <= kinds
    for report in reports:
        verdict = report["verdict"]
        assert set(verdict) == set(rows)
        assert verdict["kind"] in kinds and set(verdict["tensors"]) == explanations
    assert [r["verdict"]["kind"] for r in reports] == ["bf16-exact", "full-f32", "bf16-plus-one"]
    assert reports[0]["verdict"]["plus_one_max_abs_error"] is None
    assert isinstance(reports[2]["verdict"]["plus_one_max_abs_error"], float)


def test_jsonl_records_carry_the_verdict_too(tmp_path: Path) -> None:
    plus_one_file(tmp_path / "a.gguf")
    result = pyscan_cli(str(tmp_path), "--jsonl")
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    single = json.loads(pyscan_cli(str(tmp_path / "a.gguf"), "--json").stdout)
    assert record["verdict"] == single["verdict"] and record["verdict"]["kind"] == "bf16-plus-one"
    assert set(record) == set(schema("report")) | {"mtime_ns", "realpath"}
    assert os.path.samefile(record["realpath"], tmp_path / "a.gguf")
