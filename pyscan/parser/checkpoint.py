"""Open a Hugging Face checkpoint folder as one model: config.json plus one or more safetensors shards.

Layout: ``config.json`` and either ``model.safetensors`` or ``model.safetensors.index.json``
(``{"weight_map": {tensor name: shard file name}}``) beside the shards it names.  Only headers
are read here: each shard is mapped and parsed, no tensor data is touched.

Nothing in the folder is trusted: config.json fields of the wrong type or out of range, an index
naming a file outside the folder, a missing shard, or a tensor the index puts in a shard that
does not hold it: each is one PyscanError naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, NamedTuple, NoReturn

from pyscan.errors import PyscanError
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.parser.opener import open_model
from pyscan.small_files import NotARegularFile, read_at_most
from pyscan.text import quote

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
MAX_JSON_BYTES = 64 << 20  # an index of 200,000 tensors is ~20 MB
MAX_COUNT = 1 << 16  # blocks, heads: far above any real model, low enough to build name maps for


class CheckpointConfig(NamedTuple):
    """What the diff needs from config.json; None where the file does not say."""

    model_type: str | None
    architectures: tuple[str, ...]
    n_blocks: int | None
    n_head: int | None
    n_kv_head: int | None


class Checkpoint:
    """A folder's shards, as (shard, tensor) entries in the shards' order, and its config."""

    __slots__ = ("path", "config", "shards", "entries")

    def __init__(self, path: str, config: CheckpointConfig, shards: list[ModelFile]) -> None:
        self.path = path
        self.config = config
        self.shards = shards
        self.entries: list[tuple[ModelFile, TensorInfo]] = [(s, t) for s in shards for t in s.tensors]

    def __repr__(self) -> str:
        return f"Checkpoint({self.path!r}, {len(self.shards)} shards, {len(self.entries)} tensors)"

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def check(self) -> None:
        for shard in self.shards:
            shard.check()


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    return os.path.isdir(path)


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    folder = os.fspath(path)
    config = read_config(os.path.join(folder, CONFIG))
    index = os.path.join(folder, INDEX)
    if os.path.exists(index):
        names, weight_map = _read_index(index)
        shards = [_open_shard(os.path.join(folder, n)) for n in names]
        held = {name: {t.name for t in shard.tensors} for name, shard in zip(names, shards, strict=True)}
        for tensor, file_name in weight_map.items():  # sets: an index may name 200,000 tensors
            if tensor not in held[file_name]:
                raise PyscanError(index, f"tensor {quote(tensor)} is not in {quote(file_name)}, which the index names")
    elif os.path.exists(os.path.join(folder, SINGLE)):
        shards = [_open_shard(os.path.join(folder, SINGLE))]
    else:
        raise PyscanError(folder, f"a folder with neither {SINGLE} nor {INDEX}: not a Hugging Face checkpoint")
    seen: dict[str, str] = {}
    for shard in shards:
        for t in shard.tensors:
            if t.name in seen:
                raise PyscanError(shard.path, f"tensor {quote(t.name)} is also in {quote(seen[t.name])}")
            seen[t.name] = os.path.basename(shard.path)
    return Checkpoint(folder, config, shards)


def checkpoint_files(path: str | os.PathLike[str]) -> list[str]:
    """The files of a checkpoint folder that opening it reads: config.json, the index or the single
    file, and the shards the index names (those it can read; opening the folder reports the rest)."""
    folder = os.fspath(path)
    config, index = os.path.join(folder, CONFIG), os.path.join(folder, INDEX)
    if not os.path.exists(index):  # as open_checkpoint reads the folder
        return [config, os.path.join(folder, SINGLE)]
    files = [config, index]
    with contextlib.suppress(PyscanError):
        files += [os.path.join(folder, name) for name in _read_index(index)[0]]
    return files


def _open_shard(path: str) -> ModelFile:
    model = open_model(path)
    if model.format != "safetensors":
        model.close()
        raise PyscanError(path, "a checkpoint shard that is not a safetensors file")
    return model


def _load_json(path: str) -> Any:
    def fail(reason: str) -> NoReturn:
        raise PyscanError(path, reason)

    try:
        raw = read_at_most(path, MAX_JSON_BYTES)
    except NotARegularFile:
        fail("is not a regular file")  # as a FIFO or folder shard is
    except OSError as exc:
        raise PyscanError(path, f"cannot read: {(exc.strerror or str(exc)).lower()}", "io") from None
    if len(raw) > MAX_JSON_BYTES:
        fail(f"over {MAX_JSON_BYTES >> 20} MiB: too long for a checkpoint's JSON file")

    def no_constant(name: str) -> NoReturn:
        fail(f"holds {name}, which is not JSON")

    def parse_int(literal: str) -> int:
        if len(literal.lstrip("-")) > 20:  # int() is quadratic in the length on Python < 3.11
            fail(f"holds a {len(literal)}-digit integer")
        return int(literal)

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constant, parse_int=parse_int)
    except UnicodeDecodeError:
        fail("is not valid UTF-8")
    except RecursionError:
        fail("nests too deeply to parse")
    except ValueError as exc:
        fail(f"is not valid JSON ({exc})")


def read_config(path: str) -> CheckpointConfig:
    if not os.path.exists(path):
        raise PyscanError(os.path.dirname(path) or ".", f"a checkpoint folder needs {CONFIG}, and it has none", "io")
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise PyscanError(path, "is not a JSON object")
    # Multimodal configs (Gemma 3 4B and up) keep the language model's numbers in text_config.
    # A null field is an absent one (transformers' to_dict writes null for unset fields).
    text = raw.get("text_config")
    fields: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    if isinstance(text, dict):
        fields.update((k, v) for k, v in text.items() if v is not None)

    def count(key: str) -> int | None:
        value = fields.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_COUNT:
            raise PyscanError(path, f"{key} is {_short(value)}, not a count from 1 to {MAX_COUNT}")
        return value

    model_type = fields.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise PyscanError(path, f"model_type is {_short(model_type)}, not a string")
    architectures = raw.get("architectures")
    if architectures is None:
        architectures = []
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise PyscanError(path, f"architectures is {_short(architectures)}, not a list of strings")
    n_head = count("num_attention_heads")
    n_kv = count("num_key_value_heads")
    return CheckpointConfig(model_type, tuple(architectures), count("num_hidden_layers"), n_head, n_kv or n_head)


def _read_index(path: str) -> tuple[list[str], dict[str, str]]:
    """The shard file names (in first-use order) and the weight map, each name checked to stay in the folder."""
    raw = _load_json(path)
    weight_map = raw.get("weight_map") if isinstance(raw, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise PyscanError(path, "has no weight_map object naming the shards")
    names: dict[str, None] = {}  # an ordered set
    for tensor, file_name in weight_map.items():
        if not isinstance(file_name, str):
            raise PyscanError(path, f"tensor {quote(tensor)} maps to {_short(file_name)}, not a file name")
        if file_name in names:
            continue
        # A shard is a plain name beside the index: no folders, no "..", nothing absolute.
        if not file_name or file_name != os.path.basename(file_name) or file_name in (".", ".."):
            raise PyscanError(path, f"shard {quote(file_name)} is not a file name inside the checkpoint folder")
        shard = os.path.join(os.path.dirname(path), file_name)
        if not os.path.isfile(shard):
            missing = not os.path.exists(shard)  # (a dangling link too)
            reason = "is missing from the folder" if missing else "is not a regular file (a folder, FIFO or device)"
            raise PyscanError(path, f"shard {quote(file_name)} {reason}", "io" if missing else "format")
        names[file_name] = None
    return list(names), weight_map


def _short(value: object) -> str:
    text = json.dumps(value)[:40]
    return quote(text, 40) if isinstance(value, str) else text
