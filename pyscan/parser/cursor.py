"""Bounds-checked reading of fixed-size fields and GGUF strings from a byte buffer."""

from __future__ import annotations

import struct
from typing import Literal

from pyscan.errors import PyscanError

MAX_STRING_BYTES = 1 << 30  # ggml refuses longer strings


class Cursor:
    """Reads little- or big-endian fields from ``buf`` front to back.

    Every read checks that the bytes are there first; a short read raises a
    PyscanError naming what was being read and where.
    """

    def __init__(self, buf: memoryview, path: str, byte_order: Literal["<", ">"] = "<") -> None:
        self.buf = buf
        self.path = path
        self.pos = 0
        self.size = len(buf)
        self.set_byte_order(byte_order)

    def set_byte_order(self, byte_order: Literal["<", ">"]) -> None:
        self.byte_order: Literal["<", ">"] = byte_order
        self._u32 = struct.Struct(byte_order + "I")
        self._u64 = struct.Struct(byte_order + "Q")

    def fail(self, reason: str) -> PyscanError:
        return PyscanError(self.path, reason)

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise self.fail(f"truncated: the file ends inside {what} (at byte {self.pos}, needs {n} more)")

    def u32(self, what: str) -> int:
        self.need(4, what)
        (value,) = self._u32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (value,) = self._u64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def unpack(self, fmt: struct.Struct, what: str) -> object:
        self.need(fmt.size, what)
        (value,) = fmt.unpack_from(self.buf, self.pos)
        self.pos += fmt.size
        return value

    def raw_string(self, what: str) -> bytes:
        length = self.u64(f"the length of {what}")
        if length > MAX_STRING_BYTES:
            raise self.fail(f"{what} claims {length} bytes (limit {MAX_STRING_BYTES})")
        self.need(length, what)
        data = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return data

    def text(self, what: str) -> str:
        """A string that must be valid UTF-8 (keys and tensor names)."""
        data = self.raw_string(what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not valid UTF-8 (byte {exc.start}: {data[:40]!r})") from None
