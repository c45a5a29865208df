"""One side of a diff: a model file, or a checkpoint folder of shards, seen as one list of tensors.

Each tensor is an entry (the file holding it, its info), so the comparison reads every tensor
through its own file's mapping; architecture facts (name, block and head counts) come from the
GGUF metadata or the checkpoint's config.json.
"""

from __future__ import annotations

import os
from typing import Literal, NamedTuple

from pyscan.parser.checkpoint import Checkpoint, is_checkpoint, open_checkpoint
from pyscan.parser.metadata import MetadataEntry
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.parser.opener import open_model

Entry = tuple[ModelFile, TensorInfo]
SideFormat = Literal["gguf", "safetensors", "checkpoint"]


class ModelFacts(NamedTuple):
    """What names and conversions depend on; None where the side does not say."""

    architecture: str | None  # a GGUF architecture name ("gemma3") or a config.json model_type
    n_blocks: int | None
    n_head: int | None
    n_kv_head: int | None


class Side:
    """A model opened for a diff; close() drops every file it holds."""

    __slots__ = ("path", "format", "version", "byte_order", "metadata", "entries", "facts", "_files", "single")

    def __init__(self, path: str, files: list[ModelFile], entries: list[Entry], facts: ModelFacts,
                 single: ModelFile | None) -> None:  # fmt: skip
        self.path = path
        self._files = files
        self.entries = entries
        self.facts = facts
        self.single = single  # the one file of a file side, None for a checkpoint
        first = files[0] if files else None
        self.format: SideFormat = "checkpoint" if single is None else single.format
        self.version = None if single is None else single.version
        self.byte_order = "little" if first is None else first.byte_order
        self.metadata: dict[str, MetadataEntry] = {} if single is None else single.metadata

    def require_data(self) -> None:
        for f in self._files:
            f.require_data()

    def check(self) -> None:
        for f in self._files:
            f.check()

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self) -> Side:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.check()
        finally:
            self.close()


def file_side(model: ModelFile) -> Side:
    return Side(model.path, [model], [(model, t) for t in model.tensors], _gguf_facts(model), model)


def checkpoint_side(checkpoint: Checkpoint) -> Side:
    c = checkpoint.config
    facts = ModelFacts(c.model_type, c.n_blocks, c.n_head, c.n_kv_head)
    return Side(checkpoint.path, list(checkpoint.shards), checkpoint.entries, facts, None)


def open_side(path: str | os.PathLike[str]) -> Side:
    if is_checkpoint(path):
        return checkpoint_side(open_checkpoint(path))
    return file_side(open_model(path))


def _gguf_facts(model: ModelFile) -> ModelFacts:
    arch = model.value("general.architecture")
    if not isinstance(arch, str):
        return ModelFacts(None, None, None, None)

    def count(key: str) -> int | None:
        value = model.value(f"{arch}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1 << 16 else None

    return ModelFacts(arch, count("block_count"), count("attention.head_count"), count("attention.head_count_kv"))
