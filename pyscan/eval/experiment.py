"""``pyscan experiment``: write one fake-quantized variant per mode, then evaluate them all against the model.

The variants are written with the safe writer (pyscan.rewrite_file) and evaluated in one eval run,
so the base model's logits are computed once for all of them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyscan.errors import PyscanError
from pyscan.eval.engine import MISSING_EXTRA
from pyscan.eval.runner import EvalRequest, evaluate
from pyscan.rewrite.modes import RewriteMode, parse_mode

if TYPE_CHECKING:
    from pyscan.rewrite.engine import RewriteReport

DEFAULT_MODES = ("truncate=bf16", "round=fp16", "truncate=m3", "fake-quant=int8", "fake-quant=int4:32")


def parse_kind_format(spelling: str) -> RewriteMode:
    """KIND=FMT as the rewrite flags spell it: truncate=bf16, round=fp16, fake-quant=int4:32 (group size 32)."""
    kind, _, fmt = spelling.partition("=")
    kind = kind.strip().lower()
    if not fmt or kind not in ("truncate", "round", "fake-quant"):
        raise PyscanError(
            None, f"--mode takes KIND=FMT with KIND truncate, round or fake-quant, not {spelling!r}", "usage"
        )
    group = None
    if kind == "fake-quant" and ":" in fmt:
        fmt, _, size = fmt.partition(":")
        # ASCII digits, at most 18: isdigit() takes "²", which int() refuses, and int() refuses 5,000 digits
        if not re.fullmatch(r"[0-9]{1,18}", size.strip()):
            raise PyscanError(None, f"--mode {spelling!r}: the group size must be a number", "usage")
        group = int(size)
    mode = parse_mode(
        fmt if kind == "truncate" else None, fmt if kind == "round" else None, fmt if kind == "fake-quant" else None,
        group,
    )  # fmt: skip
    assert mode is not None
    return mode


def mode_name(mode: RewriteMode) -> str:
    """The one spelling of a mode, as parse_kind_format reads it: fake-quant=int4:32, never int4:032."""
    return f"{mode.kind}={mode.target}" + (f":{mode.group_size}" if mode.group_size is not None else "")


def variant_paths(model: str, modes: Sequence[str], folder: str) -> list[str]:
    """Where each mode's variant goes: FOLDER/STEM.INDEX.KIND-FMT.gguf, as mode_name spells it (int4:32 as int4g32)."""
    stem = os.path.splitext(os.path.basename(model))[0]
    names = [mode_name(parse_kind_format(spelling)).replace("=", "-").replace(":", "g") for spelling in modes]
    return [os.path.join(folder, f"{stem}.{index}.{name}.gguf") for index, name in enumerate(names)]


def run_experiment(
    model: str,
    modes: Sequence[str],
    include: Sequence[str],
    folder: str | None,
    request: EvalRequest,
    force: bool = False,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """JSON-ready: base (as in eval) and modes, one object per mode (see README).

    force: let the variants replace files of the same names in folder.  Every target is checked,
    every mode against the chosen tensors, the base model loaded in the inference engine and the text
    cut into chunks, before the first variant is written: a refused target, a tensor a mode refuses, a
    missing or broken engine, a model it refuses, a text too short or a prompt too long writes nothing.
    """
    from pyscan.writer import rewrite_file
    from pyscan.writer.atomic import check_target

    # the report names each mode as mode_name spells it: the user's " Fake-Quant=INT4:032" is int4:32
    parsed = [(mode_name(mode), mode) for mode in map(parse_kind_format, modes)]
    kept = folder is not None  # -o DIR keeps the variants; a temporary folder goes with the run
    replace_existing = force or not kept  # a fresh temporary folder holds nothing to lose
    with ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pyscan-experiment-"))
        elif not os.path.isdir(folder):
            if os.path.exists(folder):
                raise PyscanError(folder, "is not a folder: -o takes the folder to keep the variants in", "usage")
            raise PyscanError(folder, "no such folder", "io")
        outputs = variant_paths(model, modes, folder)
        for out in outputs:  # (a command's refusal: it names the command's option)
            check_target(out, [model], replace_existing, "is the model itself", force_option="--force")
        _check_writable(folder)
        _check_modes(model, [mode for _, mode in parsed], include, exclude)
        if importlib.util.find_spec("llama_cpp") is None:  # the engine would say so only after the writes
            raise PyscanError(None, MISSING_EXTRA, "usage")
        rewrites: list[RewriteReport] = []

        def write_variants() -> None:
            rewrites.extend(
                rewrite_file(model, mode, output=out, include=include, exclude=exclude, force=replace_existing)
                for (_, mode), out in zip(parsed, outputs, strict=True)
            )

        report = evaluate(replace(request, base=model, candidates=outputs), write_variants)
    rows = []
    for (spelling, _), rewrite, candidate in zip(parsed, rewrites, report["candidates"], strict=True):
        rows.append({
            "mode": spelling, "changed": rewrite.changed, "n_elements": rewrite.n_elements,
            "max_abs_error": rewrite.max_abs_error, "max_rel_error": rewrite.max_rel_error,
            "output": candidate["path"] if kept else None,
            "ppl": candidate["ppl"], "delta_ppl": candidate["ppl"] - report["base"]["ppl"],
            "kld_mean": candidate["kld_mean"], "kld_p99": candidate["kld_p99"], "same_top_p": candidate["same_top_p"],
            "outputs_identical": candidate.get("outputs_identical"),
        })  # fmt: skip
    return {key: report[key] for key in ("base", "text", "ctx", "n_chunks", "n_tokens_scored")} | {"modes": rows}


def _check_writable(folder: str) -> None:
    """A folder the variants cannot be written to is found now, not after the engine loaded the model."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PyscanError(folder, f"cannot create a file in it: {exc.strerror or exc}", "io") from None


def _check_modes(model: str, modes: Sequence[RewriteMode], include: Sequence[str], exclude: Sequence[str]) -> None:
    """Raise what rewrite_file would raise for the tensors it chooses (none chosen, rows that a block
    format cannot cut) before any variant is written, not after the modes before it."""
    from pyscan.parser import open_model
    from pyscan.rewrite import select_targets
    from pyscan.rewrite.blocks import check_rows

    with open_model(model) as gguf:
        gguf.require_data()
        targets = select_targets(gguf, include, exclude)
        for mode in modes:
            if mode.is_block_format:
                check_rows(gguf.path, targets, mode.target)
