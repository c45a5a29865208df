"""The plain-language conclusion of a report: what would --truncate bf16 change?"""

from __future__ import annotations

from pyscan.scan.report import FileReport


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def verdict(report: FileReport) -> str:
    f32 = report.scanned("F32")
    if not f32:
        return "No F32 tensors were scanned: --truncate bf16 would change nothing."
    n = len(f32)
    words = sum(t.n_elements for t in f32)
    inexact = [t for t in f32 if t.count("low16_zero") < t.n_elements]
    if not inexact:
        nans = sum(t.count("nan") for t in f32)
        note = f" (its {_plural(nans, 'NaN')} would only be made quiet)" if nans else ""
        all_of = "the" if n == 1 else f"all {n:,}"
        return (
            f"{all_of.capitalize()} F32 {'tensor is' if n == 1 else 'tensors are'} already BF16-exact: "
            f"--truncate bf16 would change nothing{note}."
        )
    changed = sum(t.n_elements - t.count("low16_zero") for t in inexact)
    share = f"{changed:,} of {words:,} F32 values ({100 * changed / words:.2f}%)"
    plus_one = [t for t in inexact if t.count("low16_zero_minus_one") == t.n_elements - t.count("nan")]
    if len(plus_one) == len(inexact):
        return (
            f"{len(inexact)} of {_plural(n, 'F32 tensor')} are not BF16-exact, but w - 1 is BF16-exact for "
            f"every value in them: BF16 weights stored as (w + 1) in F32, as llama.cpp's converter stores "
            f"Gemma norms. --truncate bf16 would change {share}."
        )
    looks = "looks" if len(plus_one) == 1 else "look"
    extra = f" ({len(plus_one)} of them {looks} like BF16 weights stored as w + 1)" if plus_one else ""
    return (
        f"{len(inexact)} of {_plural(n, 'F32 tensor')} carry more than BF16 precision{extra}: "
        f"--truncate bf16 would change {share}."
    )
