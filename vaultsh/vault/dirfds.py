"""A bounded cache of directory file descriptors for working on a cipher tree relative to them."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

# A cipher path as a Path or as its string: every lookup here is by string, and a mount's node
# table keeps plain strings (a Path object with its parts list is twice the memory).
CipherPath = Path | str

# O_PATH: the fd only names the directory (no read permission needed, no atime); O_NOFOLLOW
# with O_DIRECTORY: a symlink planted in the cipher tree fails with ENOTDIR instead of leading
# elsewhere.
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# An object itself, named without following a final symlink and without opening it (a FIFO
# does not block, a device is not touched): its /proc/self/fd name then reaches exactly that
# object for calls that have no *at form or no "no follow" flag (see `with_object`).
OBJECT_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
DEFAULT_SIZE = 64
# A cached descriptor follows its directory if something else renames it behind our back;
# reopening by path after this long bounds how long such a change goes unseen (as gocryptfs's
# own directory cache does). A directory swapped for a symlink is never followed either way.
MAX_AGE = 1.0


class DirFds:
    """Open O_PATH descriptors of cipher directories, keyed by their path, least recently used
    dropped first.

    Every operation names its object as (descriptor of the parent, one component), so a cipher
    path is never handed to the kernel whole: it may be far longer than PATH_MAX (encrypted
    names are a third longer than plain ones). A directory missing from the cache is reached
    component by component from the nearest cached ancestor. One lock covers looking up a
    descriptor and the system call that uses it, so another thread cannot close it in between;
    descriptors dropped meanwhile (evicted, expired, forgotten) are closed only when the
    outermost call is done, so a caller never holds a closed descriptor.

    A directory's name IV is kept with its descriptor and read through it: it always belongs
    to the directory the descriptor refers to, even if the one at that path was replaced
    behind our back (a new descriptor reads the new IV).
    """

    def __init__(self, root: Path, size: int = DEFAULT_SIZE, *, max_age: float | None = None) -> None:
        self.root = root
        # Seconds a cached descriptor is trusted (MAX_AGE if None); below zero, never: every
        # call then walks from the root, for trees others rename in while we work on them.
        self.max_age = max_age
        self._root_key = str(root)
        self._root_fd = self._open_root()
        self._root_iv: bytes | None = None
        # path -> (descriptor, when opened, name IV once read through it)
        self._fds: OrderedDict[str, tuple[int, float, bytes | None]] = OrderedDict()
        self._size = max(1, size)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of calls holding the lock
        self._retired: list[int] = []
        self._pins: dict[str, int] = {}  # see `pinned`

    def _open_root(self) -> int:
        # The root is the user's choice of directory and may be reached through a symlink.
        return os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        """Close every descriptor (so the directory is not kept busy, e.g. for an unmount).

        The cache stays usable: the next call opens what it needs again."""
        with self._lock:
            for fd, _, _ in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._close_retired()
            if self._root_fd >= 0:
                os.close(self._root_fd)
                self._root_fd = -1
                self._root_iv = None

    def __del__(self) -> None:
        # A Vault has no explicit close in most callers; give its descriptors back with it.
        # At interpreter shutdown `os` may already be gone: nothing is left to report to.
        with contextlib.suppress(Exception):
            self.close()

    # -- descriptors ------------------------------------------------------------------------

    def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for fd in retired:
            os.close(fd)

    def _fresh(self, opened: float, now: float) -> bool:
        """Whether a descriptor opened at `opened` may still be trusted."""
        return now - opened <= (MAX_AGE if self.max_age is None else self.max_age)

    def _cached(self, key: str, now: float) -> int:
        """A cached descriptor that is fresh enough, else -1 (a stale one is dropped)."""
        hit = self._fds.get(key)
        if hit is None:
            return -1
        if not self._fresh(hit[1], now):
            del self._fds[key]
            self._retired.append(hit[0])
            return -1
        return hit[0]

    def _fd(self, key: str) -> int:
        """The descriptor of a cipher directory (caller holds the lock)."""
        if key == self._root_key or self._root_fd < 0:
            if self._root_fd < 0:
                self._root_fd = self._open_root()
            if key == self._root_key:
                return self._root_fd
        pinned = self._pins.get(key)
        if pinned is not None:
            return pinned
        fds = self._fds
        now = time.monotonic()
        fd = self._cached(key, now)
        if fd >= 0:
            fds.move_to_end(key)
            return fd
        root = self._root_key
        # Path(".") / "x" is "x": a vault opened as "." has children without a prefix.
        prefix = "" if root == "." else root if root.endswith("/") else root + "/"
        if not key.startswith(prefix):
            raise OSError(errno.EXDEV, "outside the vault", key)
        # Walk up to the nearest directory we hold, then open down from it. Only the target
        # is cached: the steps between are closed at once.
        rest: list[str] = []
        base_key = key
        base = -1
        while base < 0:
            base_key, sep, name = base_key.rpartition("/")
            rest.append(name)
            if not sep or base_key == root or len(base_key) < len(prefix):
                base = self._root_fd
            else:
                base = self._pins.get(base_key, -1)
                if base < 0:
                    base = self._cached(base_key, now)
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
        fds[key] = (cur, now, None)
        if len(fds) > self._size:
            self._retired.append(fds.popitem(last=False)[1][0])
        return cur

    def iv(self, cipher_dir: CipherPath, read: Callable[[CipherPath, int], bytes]) -> bytes:
        """The name IV of a directory: `read(cipher_dir, descriptor)` once per descriptor
        opened for it."""
        key = str(cipher_dir)
        # Every name operation asks: a fresh entry is answered without taking the lock (the
        # entry is one immutable tuple, read atomically).
        hit = self._fds.get(key)
        if (
            hit is not None
            and hit[2] is not None
            and self._fresh(hit[1], time.monotonic())
            and self._pins.get(key, hit[0]) == hit[0]
        ):
            return hit[2]
        root_iv = self._root_iv  # read once: close() in another thread may reset it
        if root_iv is not None and key == self._root_key:
            return root_iv
        self._enter()
        try:
            fd = self._fd(key)
            if key == self._root_key:
                if self._root_iv is None:
                    self._root_iv = read(cipher_dir, fd)
                return self._root_iv
            entry = self._fds.get(key)
            if entry is None or entry[0] != fd:
                return read(cipher_dir, fd)  # a pinned descriptor that left the cache
            iv = entry[2]
            if iv is None:
                iv = read(cipher_dir, fd)
                self._fds[key] = (fd, entry[1], iv)
            return iv
        finally:
            self._leave()

    def adopt(self, cipher_dir: Path, fd: int, iv: bytes | None) -> None:
        """Take over `fd`, a descriptor of the directory just made at `cipher_dir` and checked
        by the caller, as its cached one, with the name IV written through it (None: read on
        first use). Whatever was cached at or below that path belonged to an earlier directory."""
        key = str(cipher_dir)
        self._enter()
        try:
            self.forget(cipher_dir)
            self._fds[key] = (fd, time.monotonic(), iv)
            if len(self._fds) > self._size:
                self._retired.append(self._fds.popitem(last=False)[1][0])
        finally:
            self._leave()

    def forget(self, cipher_dir: CipherPath, *, subtree: bool = True) -> None:
        """Drop the descriptor (and IV) of a directory that was moved or removed, and with
        `subtree` those of everything under it (an empty directory that was removed has
        nothing below)."""
        key = str(cipher_dir)
        with self._lock:
            hit = self._fds.pop(key, None)
            if hit is not None:
                self._retired.append(hit[0])
            if subtree:
                below = key + "/"
                for k in [k for k in self._fds if k.startswith(below)]:
                    self._retired.append(self._fds.pop(k)[0])
            if not self._depth:
                self._close_retired()

    # -- operations -------------------------------------------------------------------------

    def split(self, cpath: Path) -> tuple[Path, str]:
        """(parent directory, last component) of a cipher path; the root is (root, ".")."""
        if str(cpath) == self._root_key:
            return cpath, "."
        return cpath.parent, cpath.name

    def _split_key(self, cpath: CipherPath) -> tuple[str, str]:
        """Like `split`, as (parent key, name) by string operations: no Path is built, which
        matters on the hot paths (a stat per `ls -l` entry)."""
        key = str(cpath)
        if key == self._root_key:
            return key, "."
        parent, sep, name = key.rpartition("/")
        if not sep:  # a child of a vault opened as "."
            return self._root_key, name
        return parent or "/", name

    def _enter(self) -> None:
        self._lock.acquire()
        self._depth += 1

    def _leave(self) -> None:
        self._depth -= 1
        if not self._depth and self._retired:
            self._close_retired()
        self._lock.release()

    def call(self, cipher_dir: CipherPath, fn: Callable[[int], _T]) -> _T:
        """`fn(descriptor of cipher_dir)`, the descriptor valid for the length of the call."""
        self._enter()
        try:
            return fn(self._fd(str(cipher_dir)))
        finally:
            self._leave()

    def at(self, parent: CipherPath, name: str, fn: Callable[..., _T], *args: object, **kw: object) -> _T:
        """`fn(name, *args, dir_fd=<parent's fd>, **kw)`: one *at system call in `parent`."""
        self._enter()
        try:
            return fn(name, *args, dir_fd=self._fd(str(parent)), **kw)
        finally:
            self._leave()

    def path_at(self, cpath: CipherPath, fn: Callable[..., _T], *args: object, **kw: object) -> _T:
        """Like `at`, for an object known by its full cipher path."""
        parent, name = self._split_key(cpath)
        self._enter()
        try:
            return fn(name, *args, dir_fd=self._fd(parent), **kw)
        finally:
            self._leave()

    def pair(self, src_parent: CipherPath, dst_parent: CipherPath, fn: Callable[[int, int], _T]) -> _T:
        """`fn(src parent fd, dst parent fd)` for renames and links between two directories."""
        self._enter()
        try:
            return fn(self._fd(str(src_parent)), self._fd(str(dst_parent)))
        finally:
            self._leave()

    def open_dir(self, cipher_dir: Path) -> int:
        """A new readable descriptor of a directory (for listing); the caller closes it."""
        parent, name = self.split(cipher_dir)
        return self.at(parent, name, os.open, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def entry_has_xattr(self, cpath: CipherPath, attr: str) -> bool:
        """Whether the entry at `cpath` itself (a final symlink not followed, a FIFO not
        opened) has the extended attribute `attr`; raises OSError for other failures.

        The everyday question of `ls -l` (an SELinux label, an ACL), nearly always "no":
        one getxattrat(2) in the parent we hold, or the entry's /proc name before Linux 6.13.
        """
        parent, name = self._split_key(cpath)
        self._enter()
        try:
            dir_fd = self._fd(parent)
            if _getxattrat is not None:
                entry, key = os.fsencode(name), os.fsencode(attr)
                if _getxattrat(dir_fd, entry, AT_SYMLINK_NOFOLLOW, key, _NO_VALUE, _ARGS_SIZE) >= 0:
                    return True
                err = ctypes.get_errno()
                if err == errno.ENODATA:
                    return False
                if err not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter's answer
                    raise OSError(err, os.strerror(err), name)
                _disable_getxattrat()
            try:
                os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", attr, follow_symlinks=False)
            except OSError as e:
                if e.errno == errno.ENODATA:
                    return False
                raise
            return True
        finally:
            self._leave()

    @contextlib.contextmanager
    def pinned(self, cipher_dir: CipherPath, same: Callable[[os.stat_result], bool]) -> Iterator[None]:
        """Within the block, every call on `cipher_dir` or below it goes through one descriptor
        of it, checked by `same` first (an inode check; ESTALE if its name now holds another
        directory). A request that makes several calls in a directory (a `.name` sidecar, then
        the object, then its mode) thus changes exactly the directory it was checked against,
        even if the name is swapped or the cached descriptor expires in between."""
        key = str(cipher_dir)
        self._enter()
        try:
            fd = self._fd(key)
            if not same(os.fstat(fd)) and key not in self._pins:
                # The cached descriptor may be of a directory replaced behind our back: the
                # name is opened anew once before the request is refused.
                self.forget(cipher_dir)
                fd = self._fd(key)
            if not same(os.fstat(fd)):
                raise OSError(errno.ESTALE, "replaced by another directory", key)
            had = self._pins.get(key)
            self._pins[key] = fd  # a pinned descriptor evicted meanwhile is closed after the block
            try:
                yield
            finally:
                if had is None:
                    del self._pins[key]
                else:
                    self._pins[key] = had
        finally:
            self._leave()

    def with_object(
        self,
        cpath: CipherPath,
        fn: Callable[[str, os.stat_result], _T],
        same: Callable[[os.stat_result], bool] | None = None,
    ) -> _T:
        """`fn(proc path, stat)` on the object at `cpath` itself, checked before it is touched.

        The object is opened with O_PATH|O_NOFOLLOW relative to its parent's descriptor, so a
        final symlink is the symlink itself, never its target; `/proc/self/fd/N` then names
        that very object (gocryptfs's emulation of the *at calls Linux lacks). `same` decides
        whether it is the object the caller means (an inode check): a name swapped meanwhile
        for another object, say a hard link to a file outside the vault, fails with ESTALE,
        so the check and the action concern one object, with no window in between.
        """
        parent, name = self._split_key(cpath)
        self._enter()
        try:
            fd = os.open(name, OBJECT_FLAGS, dir_fd=self._fd(parent))
        finally:
            self._leave()
        try:
            st = os.fstat(fd)
            if same is not None and not same(st):
                raise OSError(errno.ESTALE, "replaced by another object", name)
            return fn(f"/proc/self/fd/{fd}", st)
        finally:
            os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_SYMLINK_NOFOLLOW = 0x100
_SYS_GETXATTRAT = 464  # getxattrat(2), Linux 6.13; one number on every architecture


class _XattrArgs(ctypes.Structure):
    """struct xattr_args of getxattrat(2): no buffer, so the call returns the value's size."""

    _fields_ = (("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32))


_NO_VALUE = ctypes.byref(_XattrArgs(0, 0, 0))
_ARGS_SIZE = ctypes.sizeof(_XattrArgs)


def _bind_getxattrat() -> Callable[..., int] | None:
    fn = _libc["syscall"]  # a function object of its own: its argtypes touch no other caller
    fn.restype = ctypes.c_long
    fn.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p,
                   ctypes.c_void_p, ctypes.c_size_t)  # fmt: skip
    return functools.partial(fn, _SYS_GETXATTRAT)


_getxattrat: Callable[..., int] | None = _bind_getxattrat()


def _disable_getxattrat() -> None:
    """The kernel lacks getxattrat(2) (or a filter forbids it): use /proc names from now on."""
    global _getxattrat
    _getxattrat = None


def renameat2(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str, flags: int) -> None:
    """renameat2(2), which os.rename lacks: RENAME_EXCHANGE swaps two names atomically."""
    fn = getattr(_libc, "renameat2", None)
    if fn is None:  # a libc older than glibc 2.28
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if fn(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), ctypes.c_uint(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src, None, dst)
