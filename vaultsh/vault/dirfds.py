"""A bounded cache of directory file descriptors for working on a cipher tree relative to them."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

# O_PATH: the fd only names the directory (no read permission needed, no atime); O_NOFOLLOW
# with O_DIRECTORY: a symlink planted in the cipher tree fails with ENOTDIR instead of leading
# elsewhere.
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
DEFAULT_SIZE = 64


class DirFds:
    """Open O_PATH descriptors of cipher directories, keyed by their path, least recently used
    dropped first.

    Every operation names its object as (descriptor of the parent, one component), so a cipher
    path is never handed to the kernel whole: it may be far longer than PATH_MAX (encrypted
    names are a third longer than plain ones). A directory missing from the cache is reached
    component by component from the nearest cached ancestor. One lock covers looking up a
    descriptor and the system call that uses it, so another thread cannot close it in between.
    """

    def __init__(self, root: Path, size: int = DEFAULT_SIZE) -> None:
        self.root = root
        self._root_key = str(root)
        self._root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._size = max(2, size)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._root_fd >= 0:
                os.close(self._root_fd)
                self._root_fd = -1

    def __del__(self) -> None:
        # A Vault has no explicit close in most callers; give its descriptors back with it.
        # At interpreter shutdown `os` may already be gone: nothing is left to report to.
        with contextlib.suppress(Exception):
            self.close()

    # -- descriptors ------------------------------------------------------------------------

    def _fd(self, key: str) -> int:
        """The descriptor of a cipher directory (caller holds the lock)."""
        if key == self._root_key:
            return self._root_fd
        fds = self._fds
        fd = fds.get(key)
        if fd is not None:
            fds.move_to_end(key)
            return fd
        root = self._root_key
        # Path(".") / "x" is "x": a vault opened as "." has children without a prefix.
        prefix = "" if root == "." else root if root.endswith("/") else root + "/"
        if not key.startswith(prefix):
            raise OSError(errno.EXDEV, "outside the vault", key)
        # Walk up to the nearest directory we hold, then open down from it. Only the target
        # is cached: the steps between are closed at once, so a deep walk never evicts the
        # descriptor a caller got a moment ago (see `pair`).
        rest: list[str] = []
        base_key = key
        base = -1
        while base < 0:
            base_key, sep, name = base_key.rpartition("/")
            rest.append(name)
            if not sep or base_key == root or len(base_key) < len(prefix):
                base = self._root_fd
            else:
                base = fds.get(base_key, -1)
        cur = base
        try:
            for name in reversed(rest):
                nxt = os.open(name, DIR_FLAGS, dir_fd=cur)
                if cur != base:
                    os.close(cur)
                cur = nxt
        except BaseException:
            if cur != base:
                os.close(cur)
            raise
        fds[key] = cur
        if len(fds) > self._size:
            os.close(fds.popitem(last=False)[1])
        return cur

    def forget(self, cipher_dir: Path, *, subtree: bool = True) -> None:
        """Drop the descriptor of a directory that was moved or removed, and with `subtree`
        those of everything under it (an empty directory that was removed has nothing below)."""
        key = str(cipher_dir)
        with self._lock:
            fd = self._fds.pop(key, None)
            if fd is not None:
                os.close(fd)
            if subtree:
                below = key + "/"
                for k in [k for k in self._fds if k.startswith(below)]:
                    os.close(self._fds.pop(k))

    # -- operations -------------------------------------------------------------------------

    def split(self, cpath: Path) -> tuple[Path, str]:
        """(parent directory, last component) of a cipher path; the root is (root, ".")."""
        if str(cpath) == self._root_key:
            return cpath, "."
        return cpath.parent, cpath.name

    def _split_key(self, cpath: Path) -> tuple[str, str]:
        """Like `split`, as (parent key, name) by string operations: no Path is built, which
        matters on the hot paths (a stat per `ls -l` entry)."""
        key = str(cpath)
        if key == self._root_key:
            return key, "."
        parent, sep, name = key.rpartition("/")
        if not sep:  # a child of a vault opened as "."
            return self._root_key, name
        return parent or "/", name

    def call(self, cipher_dir: Path, fn: Callable[[int], _T]) -> _T:
        """`fn(descriptor of cipher_dir)`, the descriptor valid for the length of the call."""
        with self._lock:
            return fn(self._fd(str(cipher_dir)))

    def at(self, parent: Path, name: str, fn: Callable[..., _T], *args: object, **kw: object) -> _T:
        """`fn(name, *args, dir_fd=<parent's fd>, **kw)`: one *at system call in `parent`."""
        with self._lock:
            return fn(name, *args, dir_fd=self._fd(str(parent)), **kw)

    def path_at(self, cpath: Path, fn: Callable[..., _T], *args: object, **kw: object) -> _T:
        """Like `at`, for an object known by its full cipher path."""
        parent, name = self._split_key(cpath)
        with self._lock:
            return fn(name, *args, dir_fd=self._fd(parent), **kw)

    def pair(self, src_parent: Path, dst_parent: Path, fn: Callable[[int, int], _T]) -> _T:
        """`fn(src parent fd, dst parent fd)` for renames and links between two directories."""
        with self._lock:
            src = self._fd(str(src_parent))
            dst = self._fd(str(dst_parent))
            # The cache holds at least two, and opening `dst` added at most one: `src`, the
            # most recently used, is still open.
            return fn(src, dst)

    def open_dir(self, cipher_dir: Path) -> int:
        """A new readable descriptor of a directory (for listing); the caller closes it."""
        parent, name = self.split(cipher_dir)
        return self.at(parent, name, os.open, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def proc_path(self, cpath: Path) -> str:
        """A short path naming the object through /proc (for xattr calls, which have no *at form).

        Valid only while the lock is held; use inside `with_proc_path`.
        """
        parent, name = self._split_key(cpath)
        return f"/proc/self/fd/{self._fd(parent)}/{name}"

    def with_proc_path(self, cpath: Path, fn: Callable[[str], _T]) -> _T:
        with self._lock:
            return fn(self.proc_path(cpath))
