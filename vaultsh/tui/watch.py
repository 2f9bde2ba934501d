"""Watching the shown directory with Linux inotify (through ctypes), debounced."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

# <sys/inotify.h>
IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x004, 0x008, 0x040, 0x080
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_ONLYDIR, IN_DONT_FOLLOW = 0x01000000, 0x02000000
CHANGES = (
    IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
DEBOUNCE = 0.3  # seconds without events before one refresh: a sync tool writes in bursts
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    if not hasattr(libc, "inotify_init1"):
        return None  # not Linux
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


class DirWatcher:
    """Calls `changed(last)` from its own thread once the watched directory has been quiet for
    DEBOUNCE after a change (an entry made, removed, renamed, written or chmodded); `last` is
    the `time.monotonic()` when the burst's last change was seen, so a listing started later
    is known to hold it. Without
    inotify (not Linux, no watch left) it does nothing: Ctrl-R still reloads by hand."""

    def __init__(self, changed: Callable[[float], None]) -> None:
        self.changed = changed
        self._wd = -1
        self._thread: threading.Thread | None = None
        self._libc = _libc()
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC) if self._libc else -1
        self._wake_r, self._wake_w = os.pipe()
        # Guards reading the events and `_last_change`: `watch` reads them too (see there).
        self._lock = threading.Lock()
        self._last_change: float | None = None  # of a burst not yet reported

    @property
    def watching(self) -> bool:
        return self._wd >= 0

    def watch(self, directory: Path) -> None:
        """Watch `directory` instead of the one before (never through a symlink), and stamp the
        changes already queued with the time of this call. Call it before a listing starts.

        Called from one thread only. Two things keep a change this process has just made (a
        rename in the TUI, say) from listing the directory a second time on a busy machine:
        the same directory keeps its watch (removing and adding it again would drop the queued
        events with the old descriptor, and the change would never be reported), and the
        queued events are read here, so their stamp is older than the listing that follows,
        which then holds them, rather than the later time the watcher's thread would get to them.
        """
        if self._fd < 0 or self._libc is None:
            return
        self.settle()
        flags = CHANGES | IN_ONLYDIR | IN_DONT_FOLLOW
        with self._lock:
            # The same directory (inode) gives back the descriptor it has.
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), flags)
            if self._wd >= 0 and wd != self._wd:
                self._libc.inotify_rm_watch(self._fd, self._wd)
            self._wd = wd
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vaultsh-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and release the inotify instance."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1
        self._wd = -1

    def settle(self) -> None:
        """Stamp the changes queued now with the time of this call (see `watch`): call it just
        before listing the watched directory again."""
        if self._fd >= 0:
            with self._lock:
                self._read_queued()
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"w")  # a burst may have been stamped: its debounce starts

    def _read_queued(self) -> None:
        """Read the queued events (holding the lock); a change of the directory watched now
        (not IN_IGNORED, which removing the previous directory's watch sends, nor a late event
        of it) starts or extends the burst to report."""
        found = False
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._fd, 65536):
                offset = 0
                while offset + _EVENT.size <= len(data):
                    wd, mask, _cookie, name_len = _EVENT.unpack_from(data, offset)
                    offset += _EVENT.size + name_len
                    found = found or (wd == self._wd and bool(mask & CHANGES))
        if found:
            self._last_change = time.monotonic()  # wait for the burst to end

    def _run(self) -> None:
        while True:
            with self._lock:
                last = self._last_change
            timeout = None if last is None else max(0.0, last + DEBOUNCE - time.monotonic())
            ready, _, _ = select.select([self._fd, self._wake_r], [], [], timeout)
            if self._wake_r in ready and b"x" in os.read(self._wake_r, 64):
                return
            report: float | None = None
            with self._lock:
                if self._fd in ready:
                    self._read_queued()
                last = self._last_change
                if last is not None and time.monotonic() >= last + DEBOUNCE:
                    report, self._last_change = last, None
            if report is not None:
                self.changed(report)
