"""How both FUSE frontends answer a handler's unexpected failure: counted, logged without names, EIO."""

from __future__ import annotations

import errno
import logging
import traceback

import pyfuse3

from vaultsh.fs.stats import MountStats


def internal_error(
    log: logging.Logger, op: str, e: BaseException, stats: MountStats, *, log_names: bool
) -> pyfuse3.FUSEError:
    """The EIO reply for a bug in handler `op`; the mount keeps serving.

    pyfuse3 ends its loop (the whole mount) on any exception but FUSEError. The message may
    hold a plain name, so without `log_names` only where it happened is logged.
    """
    stats.errors += 1
    if log_names:
        log.error("internal error in %s", op, exc_info=e)
    else:
        where = "".join(traceback.format_tb(e.__traceback__))
        log.error("internal error in %s: %s\n%s", op, type(e).__name__, where.rstrip())
    return pyfuse3.FUSEError(errno.EIO)
