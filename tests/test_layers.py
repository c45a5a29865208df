"""The shape of the code: layers that import only downward, no import cycles, one parse per command."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyscan
from pyscan.cli.main import main
from pyscan.demo import write_tinyllama_like
from pyscan.parser import opener

PACKAGE = Path(pyscan.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, known: set[str]) -> Iterator[str]:
    """The pyscan modules a file imports, at the top or inside functions (lazy imports count too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (name for name in names if name in known)


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imports(path, set(found))) - {name} for name, path in found.items()}


def test_nothing_below_the_command_line_imports_it() -> None:
    offenders = {
        name: sorted(i for i in deps if i.startswith("pyscan.cli"))
        for name, deps in graph().items()
        if not name.startswith("pyscan.cli") and name != "pyscan.__main__"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_import_cycles() -> None:
    edges = graph()
    # A package's __init__ re-exporting its modules is not a cycle of code: leave those edges out.
    edges = {m: {d for d in deps if not (d.startswith(m + ".") and PACKAGE.joinpath(*m.split(".")[1:]).is_dir())}
             for m, deps in edges.items()}  # fmt: skip
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            # importing a submodule imports its package first: follow the package's own edges
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_a_safetensors_file_is_no_gguf_file(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.numpy")
    import numpy as np

    path = tmp_path / "x.safetensors"
    safetensors.save_file({"w": np.ones(4, dtype=np.float32)}, str(path))
    with pyscan.open(path) as model:
        assert type(model).__name__ == "ModelFile" and model.format == "safetensors" and model.version is None
    assert not any("GGUF" in name for name in dir(pyscan.parser.model))


@pytest.fixture
def parse_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    real = opener.parse_gguf

    def counting(mapping: pyscan.native.Mapping, header_only: bool = False) -> pyscan.ModelFile:
        key = os.path.basename(mapping.path)
        counts[key] = counts.get(key, 0) + 1
        return real(mapping, header_only)

    monkeypatch.setattr(opener, "parse_gguf", counting)
    return counts


@pytest.mark.parametrize("write", [["-o", "{tmp}/out.gguf"], ["--in-place"], ["--dry-run"]])
def test_a_rewrite_parses_its_input_once(
    tmp_path: Path, parse_counts: dict[str, int], monkeypatch: pytest.MonkeyPatch, write: list[str]
) -> None:
    model = tmp_path / "in.gguf"
    write_tinyllama_like(model)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)  # a terminal: the progress bar needs its total too
    status = main([str(model), "--truncate", "bf16", *[w.format(tmp=tmp_path) for w in write]])
    assert status == 0
    assert parse_counts["in.gguf"] == 1
    # -o also re-parses what it wrote, once, before publishing it.
    assert sum(v for k, v in parse_counts.items() if k != "in.gguf") == (1 if "-o" in write else 0)
