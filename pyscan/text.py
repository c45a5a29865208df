"""Text from a file, made safe for a terminal: control characters escaped, length bounded.

Tensor names, metadata strings and file names come from whoever made the file.  Printed raw, ESC
sequences would retitle the window or clear the screen, newlines would forge report lines, and a
20 MiB name would make a 20 MB error line.  Everything pyscan prints for a person goes through
here (JSON does not: it stays exact).
"""

from __future__ import annotations

QUOTE_LIMIT = 200  # characters of a name quoted in a message
LINE_LIMIT = 1000  # characters of one error line, as a last bound

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """text with every non-printable character (C0, DEL, C1, bidi controls, ...) escaped as Python does."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _NAMED.get(ch) or repr(ch)[1:-1] for ch in text)


def shorten(text: str, limit: int) -> str:
    """text cut to at most limit characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A name for a message: quoted and escaped like repr(), at most limit characters of its escaped form.

    The bound is on what is printed, not on the name: 300 bidi overrides escape to 1,800 characters.
    """
    shown = repr(text[: limit + 1])
    if len(text) <= limit and len(shown) <= limit + 2:
        return shown
    low, high = 0, min(len(text), limit)  # the longest prefix whose escaped form fits: never half an escape
    while low < high:
        middle = (low + high + 1) // 2
        if len(repr(text[:middle])) <= limit + 2:
            low = middle
        else:
            high = middle - 1
    shown = repr(text[:low])
    return f"{shown[:-1]}…{shown[-1]} ({len(text):,} characters)"  # closed with the quote repr opened with


def safe_line(text: str, limit: int = LINE_LIMIT) -> str:
    """One line for a terminal: escaped, and bounded; an overlong line keeps its end, where a message
    says what is wrong (the middle is usually a long name or list)."""
    line = printable(text)
    if len(line) <= limit:
        return line
    if limit < 120:  # too short for a head, a note and a tail
        return shorten(line, limit)
    tail = limit // 4
    head = limit - tail - 40  # room for the note in between
    return f"{line[:head]} … [{len(line) - head - tail:,} characters cut] … {line[-tail:]}"
