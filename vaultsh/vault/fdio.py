"""Writes that finish or fail: write_all and pwrite_all retry short writes and refuse a stalled one."""

from __future__ import annotations

import errno
import os


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of `data`; a write that makes no progress is an error, not a retry forever."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[n:]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """pwrite all of `data` at `offset` (short writes retried, a stalled one is an error)."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        done += n
