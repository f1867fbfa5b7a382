"""A writer that needs a file (zip, XLSX) run in a thread, its bytes handed to a generator as they
are written, so an HTTP response streams them: the first bytes leave before the last row is read,
and memory holds only a few pieces in flight.

The writer's output is unseekable; ``zipfile`` then writes data descriptors after each entry
(readable by every unzip tool, pandas, openpyxl). A client that goes away stops the writer at its
next write (``BrokenPipeError`` in the thread).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

#: Pieces in flight between the writer and the response; with 64 KiB pieces about 1 MiB.
QUEUE_PIECES = 16
PIECE_BYTES = 64 * 1024
_DONE = object()


class _Pipe(io.RawIOBase):
    """The writing end: each write is one piece on the queue (blocks while the reader is behind)."""

    def __init__(self) -> None:
        self.pieces: queue.Queue = queue.Queue(QUEUE_PIECES)
        self.cancelled = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        piece = bytes(data)
        while not self.cancelled.is_set():
            try:
                self.pieces.put(piece, timeout=0.5)
                return len(piece)
            except queue.Full:
                continue
        raise BrokenPipeError("the reader of this export went away")


def piped(write: Callable[[BinaryIO], None]) -> Iterator[bytes]:
    """Run ``write(out)`` in a thread and yield what it writes into ``out``, in pieces of about
    ``PIECE_BYTES``; re-raises the writer's exception after its last piece."""
    pipe = _Pipe()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with io.BufferedWriter(pipe, PIECE_BYTES) as out:
                write(out)
        except BaseException as exc:  # noqa: BLE001 (handed to the reading side)
            failure.append(exc)
        finally:
            while not pipe.cancelled.is_set():
                try:
                    pipe.pieces.put(_DONE, timeout=0.5)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=run, name="export-writer", daemon=True)
    thread.start()
    try:
        while (piece := pipe.pieces.get()) is not _DONE:
            yield piece
        if failure:
            raise failure[0]
    finally:
        pipe.cancelled.set()
        thread.join()
