"""A cheaper wait for the next FUSE request in pyfuse3's loop, for a worker serving with one task."""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable, Coroutine
from typing import Any

import pyfuse3
import trio

log = logging.getLogger(__name__)

# During a long burst of requests, every this many the loop still waits through trio, so
# the worker's other tasks (control socket, signals, idle watch) keep getting their turn.
YIELD_EVERY = 32

# The coroutine function pyfuse3's request loop awaits before reading each request (a module
# global of pyfuse3 3.x, looked up on every call). It returns False when the loop should end.
# pyfuse3 keeps the session's descriptor to itself, hence `fuse_device_fd` below.
_HOOK = "_wait_fuse_readable"

WaitFn = Callable[[], Coroutine[Any, Any, bool]]


def fuse_device_fd() -> int | None:
    """The process's descriptor of /dev/fuse, or None unless there is exactly one.

    pyfuse3 does not expose its session's descriptor; a worker serves one mount, so the one
    open /dev/fuse is it.
    """
    found: list[int] = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "/dev/fuse":
                found.append(int(name))
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return found[0] if len(found) == 1 else None


def direct_wait(fd: int, yield_every: int = YIELD_EVERY) -> WaitFn:
    """A request wait that returns at once when a request is already queued on `fd`.

    pyfuse3's own wait takes a trio lock and then `wait_readable`: two trips through the
    scheduler and epoll for every request, about half of what a small request (a `getxattr`
    answered ENODATA, say) costs. A program like `ls -l` sends its next request while we
    are still returning from the last one, so a zero-timeout poll usually finds it queued.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poll = poller.poll
    count = 0

    async def wait_for_request() -> bool:
        nonlocal count
        count += 1
        # POLLERR/POLLHUP (unmounted) count as ready too: the read then ends the loop.
        if count % yield_every and poll(0):
            return True
        try:
            await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:  # pyfuse3.terminate() wakes a waiter this way
            return False
        return True

    return wait_for_request


def install_direct_wait(fd: int | None = None, *, yield_every: int = YIELD_EVERY) -> bool:
    """Make pyfuse3's request loop use `direct_wait`; False (nothing changed) if it cannot.

    Only for `pyfuse3.main(max_tasks=1)`: the lock it leaves out kept several request tasks
    from reading at once, and pyfuse3 counts waiting tasks inside the wait it replaces. Call
    after `pyfuse3.init` (which opens the descriptor) and before `pyfuse3.main`.
    """
    version = str(getattr(pyfuse3, "__version__", ""))
    if not version.startswith("3.") or not callable(getattr(pyfuse3, _HOOK, None)):
        # The hook is pyfuse3's internals: only the 3.x loop is known to call it this way.
        log.info("pyfuse3 %s: serving with its own request wait", version or "(unknown version)")
        return False
    if fd is None:
        fd = fuse_device_fd()
        if fd is None:
            log.info("no single /dev/fuse descriptor found; serving with pyfuse3's own wait")
            return False
    setattr(pyfuse3, _HOOK, direct_wait(fd, yield_every))
    return True
