"""Strict JSON text for every document pyscan writes: a non-finite float is the string "inf", "-inf" or "nan".

json.dumps writes such a float as a bare Infinity or NaN, which JSON does not have: jq, JavaScript's
JSON.parse and strict parsers reject the whole document.  A rewrite's max |error| is inf where
--round fp16 overflows, a header may hold a NaN float, a broken candidate's perplexity may be inf.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(document: Any) -> str:
    """json.dumps(document), with every non-finite float spelled as a string (see json_float)."""
    try:  # the common case, one pass: a document of finite numbers
        return json.dumps(document, allow_nan=False, check_circular=False)  # our own trees: no cycle
    except ValueError:  # a non-finite float somewhere in it
        return json.dumps(_spelled(document), allow_nan=False, check_circular=False)


def json_float(x: float | None) -> float | str | None:
    """A float strict JSON can carry: non-finite values as "inf", "-inf", "nan"."""
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _spelled(value: Any) -> Any:
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {key: _spelled(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_spelled(item) for item in value]
    return value
