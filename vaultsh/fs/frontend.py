"""What both FUSE frontends share: the request wrapper, error counting and logging, teardown."""

from __future__ import annotations

import errno
import functools
import logging
import os
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar, cast

import pyfuse3
from pyfuse3 import FUSEError

from vaultsh.fs.stats import MountStats
from vaultsh.vault.errors import VaultError

# Names are what a mount hides (decrypted names forward, the plain tree's names in reverse),
# and the worker's log is a file in the runtime dir: it gets them only when asked for (this
# variable set to 1, for debugging). Otherwise a failure is logged by request, the inode or
# handle number it was about, and the error.
LOG_NAMES_ENV = "VAULTSH_LOG_NAMES"

# What the errors counter of `vaultsh mounts` counts, in both modes alike: replies that mean
# damage or a failure, so that any number but 0 is worth a look. EIO is a block, header, xattr
# or symlink target that does not authenticate, a read error of the disk below, or a bug in a
# handler; EBADMSG is a name that does not decrypt. ENOSPC and EDQUOT are a full disk or
# quota: with the kernel's writeback cache a program learns of a write that could not be
# stored only at fsync(2) or close(2), and one that ignores close's answer loses the data
# without a word, so the mount shows it. Refusals are not counted: ENOENT, EEXIST,
# ENOTEMPTY, EACCES, EPERM, EROFS, ESTALE and the like are how a filesystem answers what
# programs ask all day (every `ls` of a missing name, every compiler probe, every write tried
# on a read-only or reverse mount), and counting them would make the number grow on a healthy
# mount and bury the failure it is there to show.
COUNTED_ERRNOS = frozenset({errno.EIO, errno.EBADMSG, errno.ENOSPC, errno.EDQUOT})

_File = TypeVar("_File")
_Dir = TypeVar("_Dir")
_Frontend = TypeVar("_Frontend", bound="FuseFrontend[Any, Any]")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def statfs_reply(st: os.statvfs_result, namemax: int) -> pyfuse3.StatvfsData:
    """The kernel's statfs answer from the backing filesystem's figures; `namemax` is the
    longest plain name the mount takes (its cipher names are longer)."""
    out = pyfuse3.StatvfsData()
    for field in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail"):
        setattr(out, field, getattr(st, field))
    out.f_namemax = namemax
    return out


def request(
    fn: Callable[Concatenate[_Frontend, _P], _R],
) -> Callable[Concatenate[_Frontend, _P], Coroutine[Any, Any, _R]]:
    """Turn a synchronous handler of a FuseFrontend into a pyfuse3 request handler.

    The request counts as use of the mount. Handlers never await, so each request runs to
    completion before trio starts the next: that serialises access to the frontend's tables
    and open files without locks. Every failure leaves as FUSEError with a proper errno
    (anything else would stop the mount), counted and logged by COUNTED_ERRNOS.
    """
    op = fn.__name__.lstrip("_")  # `_getxattr` serves getxattr requests
    call = cast("Callable[..., _R]", fn)  # takes `args` whole, self included

    # On every FUSE request. pyfuse3 passes arguments by position only, so `*args` (self
    # first) is the one allocation besides the coroutine, and it goes to `fn` as it is.
    async def handler(*args: Any) -> _R:
        frontend: FuseFrontend[Any, Any] = args[0]
        frontend.stats.touch()
        try:
            return call(*args)
        except FUSEError as e:
            if e.errno in COUNTED_ERRNOS:
                frontend.count_failure(op, args, e, e.errno)
            raise
        except VaultError as e:
            code = e.errno
            if code in COUNTED_ERRNOS:
                frontend.count_failure(op, args, e, code)
            raise FUSEError(code) from None
        except OSError as e:
            code = e.errno or errno.EIO
            if code in COUNTED_ERRNOS:
                frontend.count_failure(op, args, e, code)
            raise FUSEError(code) from None
        except Exception as e:
            raise frontend.internal_error(op, e) from None

    wrapped = functools.update_wrapper(handler, fn)
    return cast("Callable[Concatenate[_Frontend, _P], Coroutine[Any, Any, _R]]", wrapped)


class FuseFrontend(pyfuse3.Operations, Generic[_File, _Dir]):
    """Base of the forward and reverse frontends: live counters, failure logging, the tables
    of open files and directories, and their teardown. Handlers are wrapped by `request`."""

    # The frontend module's logger, so a failure is logged under the mode it happened in.
    _log: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init__(self, *, stats: MountStats | None, log_names: bool) -> None:
        super().__init__()
        self.stats = stats if stats is not None else MountStats()
        self.log_names = log_names
        self._files: dict[int, _File] = {}
        self._dirs: dict[int, _Dir] = {}
        self._next_fh = 1  # files and directories draw from one sequence

    def _new_fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _add_file(self, handle: _File) -> int:
        """Register an open file; returns its handle number."""
        fh = self._new_fh()
        self._files[fh] = handle
        self.stats.open_files += 1
        return fh

    def _pop_file(self, fh: int) -> _File | None:
        """Unregister an open file (None if the kernel never had it); the caller closes it."""
        handle = self._files.pop(fh, None)
        if handle is not None:
            self.stats.open_files -= 1
        return handle

    def _close_file(self, handle: _File) -> None:
        """Free what an open file holds: its descriptor."""
        raise NotImplementedError

    def release_buffers(self) -> None:
        """Drop what is kept between requests only to save allocations; the mount is idle."""

    def close(self) -> None:
        """Close every file the kernel left open (after pyfuse3.main has returned)."""
        for handle in self._files.values():
            self._close_file(handle)
        self.stats.open_files -= len(self._files)
        self._files.clear()
        self._dirs.clear()

    # -- failures -------------------------------------------------------------------------

    def count_failure(self, op: str, args: tuple[Any, ...], e: Exception, code: int) -> None:
        """Count and log a request `op` (called with `args`, self first) that failed with `code`."""
        self.stats.errors += 1
        if self.log_names:
            self._log.warning("%s: %s", op, e)
            return
        name = errno.errorcode.get(code, str(code))
        # The inode or handle number the request was about, never its name.
        subject = f" {args[1]}" if len(args) > 1 and isinstance(args[1], int) else ""
        kind = type(e).__name__
        self._log.warning("%s%s: %s (%s); set %s=1 to log names", op, subject, kind, name, LOG_NAMES_ENV)

    def internal_error(self, op: str, e: BaseException) -> FUSEError:
        """The EIO reply for a bug in handler `op`, counted and logged; the mount keeps serving.

        pyfuse3 ends its loop (the whole mount) on any exception but FUSEError. The message may
        hold a plain name, so without `log_names` only where it happened is logged.
        """
        self.stats.errors += 1
        if self.log_names:
            self._log.error("internal error in %s", op, exc_info=e)
        else:
            where = "".join(traceback.format_tb(e.__traceback__))
            self._log.error("internal error in %s: %s\n%s", op, type(e).__name__, where.rstrip())
        return FUSEError(errno.EIO)
