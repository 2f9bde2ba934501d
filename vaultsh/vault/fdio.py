"""Writes that finish or fail: short writes retried, stalled ones refused, disk space reserved first."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from typing import cast

_FALLOC_FL_KEEP_SIZE = 1  # linux/falloc.h: allocate without changing the file's size
_BTRFS_SUPER_MAGIC = 0x9123683E  # statfs f_type of Btrfs
_reserve_on_device: dict[int, bool] = {}  # st_dev -> whether writes there reserve space first
_reserve_skipped = False  # --noprealloc


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


def skip_space_reservation() -> None:
    """Write without reserving disk space first, in this process (gocryptfs -noprealloc)."""
    global _reserve_skipped
    _reserve_skipped = True


def _libc_function(names: tuple[str, ...], *argtypes: object) -> Callable[..., int] | None:
    """The first of `names` the C library has, typed with `argtypes` (int result, errno kept);
    None if it has none."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for name in names:
        fn = getattr(libc, name, None)
        if fn is not None:
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
            return cast("Callable[..., int]", fn)
    return None


# Bound on first use (a write's hot path then pays one cache lookup): ctypes stays out of
# commands that never write.


@functools.cache
def _fallocate() -> Callable[..., int] | None:
    """fallocate(2): Python has only posix_fallocate, which grows the file."""
    import ctypes

    return _libc_function(
        ("fallocate64", "fallocate"), ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64
    )


@functools.cache
def _fstatfs() -> Callable[..., int] | None:
    """fstatfs(2): os.statvfs has no filesystem type."""
    import ctypes

    return _libc_function(("fstatfs64", "fstatfs"), ctypes.c_int, ctypes.c_void_p)


def _filesystem_type(fd: int) -> int | None:
    """The f_type (magic number) of the filesystem `fd` is on, None if unknown."""
    import ctypes

    fstatfs = _fstatfs()
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if fstatfs is None or fstatfs(fd, buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF  # f_type comes first


def reserve_space(fd: int, device: int, offset: int, length: int) -> None:
    """Allocate `length` bytes at `offset` of `fd` without changing its size (raises OSError,
    ENOSPC on a full disk), as gocryptfs does before each write. Skipped on Btrfs (gocryptfs
    too skips it there: copy-on-write makes the reservation no promise for the write, and it
    reports a full disk early) and, once they answer EOPNOTSUPP, on filesystems without
    fallocate; both are remembered by `device`."""
    if _reserve_skipped:
        return
    wanted = _reserve_on_device.get(device)
    if wanted is None:
        wanted = _reserve_on_device[device] = _filesystem_type(fd) != _BTRFS_SUPER_MAGIC
    fallocate = _fallocate() if wanted else None
    if fallocate is None:
        return
    while fallocate(fd, _FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        import ctypes

        err = ctypes.get_errno()
        if err == errno.EINTR:
            continue
        if err in (errno.EOPNOTSUPP, errno.ENOSYS):
            _reserve_on_device[device] = False
            return
        raise OSError(err, os.strerror(err))
