"""Opening a checkpoint's JSON, an eval text or a batch report: never a wait on a FIFO, never a folder or device."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyscan.errors import PyscanError
from pyscan.small_files import NotARegularFile, open_without_waiting, read_at_most


@pytest.fixture(autouse=True)
def no_wait() -> Iterator[None]:
    """An open that waits for a FIFO's writer fails the test after 10 s instead of hanging it."""

    def waited(*_: object) -> None:
        raise TimeoutError("the open waited for a writer")

    previous = signal.signal(signal.SIGALRM, waited)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_regular_file_is_read_up_to_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(b"0123456789")
    assert read_at_most(str(path), 4) == b"01234"  # one past: the caller sees it is too long
    assert read_at_most(str(path), 10) == b"0123456789"
    fd = open_without_waiting(str(path))
    try:
        assert os.read(fd, 3) == b"012"
    finally:
        os.close(fd)


def test_a_fifo_is_refused_unless_pipes_are_taken_and_then_reads_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile) as refused:
        open_without_waiting(str(fifo))  # no writer: a plain open() would wait for ever
    assert refused.value.kind == "a FIFO"
    assert read_at_most(str(fifo), 100, pipes=True) == b""  # no writer: empty at once
    reader, writer = os.pipe()
    os.write(writer, b"text")
    os.close(writer)
    fd = open_without_waiting(f"/proc/self/fd/{reader}", pipes=True)
    try:
        assert os.get_blocking(fd)  # made blocking again: a slow writer is waited for
        assert os.read(fd, 10) == b"text"
    finally:
        os.close(fd)
        os.close(reader)


def test_folders_devices_and_sockets_are_refused_by_kind(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "sock"))
    try:
        for path, kind in ((tmp_path, "a folder"), (Path("/dev/null"), "a device")):
            for pipes in (False, True):
                with pytest.raises(NotARegularFile) as refused:
                    open_without_waiting(str(path), pipes=pipes)
                assert refused.value.kind == kind
        with pytest.raises(OSError):  # a socket cannot be opened at all: the caller's "cannot read"
            open_without_waiting(str(tmp_path / "sock"))
    finally:
        listener.close()
    with pytest.raises(FileNotFoundError):
        open_without_waiting(str(tmp_path / "missing"))


def test_no_descriptor_is_left_open_by_a_refusal(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = open_descriptors()
    for path in (fifo, tmp_path, Path("/dev/null")):
        with pytest.raises(NotARegularFile):
            read_at_most(str(path), 10)
    assert open_descriptors() == before


def test_the_report_appender_closes_its_descriptor_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyscan.batch import report_file

    report = tmp_path / "r.jsonl"
    report.write_text('{"a": 1}')  # no newline at the end: the appender reads the last byte

    def failing_pread(*_: object) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(report_file.os, "pread", failing_pread)
    before = open_descriptors()
    with pytest.raises(PyscanError, match="Input/output error"):
        report_file.ReportAppender(str(report))
    assert open_descriptors() == before
