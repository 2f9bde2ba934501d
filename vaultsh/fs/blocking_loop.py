"""pyfuse3's request loop run with plain blocking waits in one thread, so the worker never imports trio."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import types
from collections.abc import Callable, Coroutine
from time import monotonic
from typing import Any, cast

# pyfuse3 reaches its async framework only through its module global `trio` (pyfuse3.asyncio
# swaps in asyncio the same way). The request handlers of this package never await, so a
# framework whose one wait blocks the thread serves each request to completion, in order.
# Importing trio costs a mount ~0.1 s and ~8 MiB, and waiting through its scheduler costs
# every request a pass through epoll and the task queue.


# How long the loop looks for the next request before it sleeps, while requests come back to
# back. A program's requests follow each other within microseconds (`ls -l` sends a getattr
# and two getxattrs per entry, an untar a create, writes and setattrs per file), and each
# wake-up of a thread sleeping on another CPU costs about as much as serving the request
# (more in a virtual machine, where an idle CPU is halted): `ls -lR` of the fsbench tree took
# 1.5 times as long as with 200 µs of looking first (0.39 s against 0.26 s, gocryptfs
# 0.24 s), an untar 1.7 times (2.3 s against 1.4 s). A wait that outlasts the
# window ends the spinning until requests come that fast again, so an idle or quiet mount
# costs no CPU; with one CPU to run on, spinning would only delay the requester, and is off.
SPIN_SECONDS = 200e-6


# After this long without a request, the loop returns the C heap's free memory to the system
# (malloc_trim) before it sleeps on. A burst of large requests (1 MiB writes, big reads) leaves
# megabytes free in the heap, which glibc keeps for the next burst; a mount spends most of its
# life idle, and that memory would count against it all the while.
QUIET_MS = 250

# After this long without a request, it also runs its `on_idle` hooks (the filesystem drops its
# reused read buffers) and trims again. Not at QUIET_MS: bursts a moment apart (a `cat` after
# an `ls`) would allocate the buffers anew each time, in a heap the requests between have
# fragmented, and the process would peak higher than by keeping them.
IDLE_MS = 5000


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl)."""
    import ctypes

    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except AttributeError:
        return None


class ClosedResourceError(Exception):
    """The descriptor being waited on is closing: pyfuse3.terminate() was called."""


class _Task:
    name = "pyfuse-01"


class _Lock:
    """pyfuse3 takes a lock around its wait so several tasks do not read at once; one task needs none."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Nursery:
    """Runs the tasks started in it one after the other when the block ends (pyfuse3 starts one)."""

    def __init__(self) -> None:
        self._queued: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    async def __aenter__(self) -> _Nursery:
        return self

    async def __aexit__(self, *exc: object) -> None:
        while self._queued:
            await self._queued.pop(0)()

    def start_soon(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        self._queued.append(lambda: fn(*args))


class BlockingFramework(types.ModuleType):
    """The part of trio pyfuse3 calls, with a wait that blocks the calling thread in poll(2)
    (after looking for the next request for up to `spin_seconds` while requests come back to
    back; see SPIN_SECONDS, the default where the process may run on more than one CPU).
    After `quiet_ms` without a request it calls `trim(0)` (glibc's malloc_trim by default)
    once; after `idle_ms` it calls each of `on_idle` and trims again, then sleeps until the
    next request.

    `notify_closing` may be called from a signal handler or another thread: it wakes the wait
    through a pipe, and the wait then raises ClosedResourceError, which ends pyfuse3's loop.
    """

    ClosedResourceError = ClosedResourceError
    Lock = _Lock

    def __init__(
        self,
        spin_seconds: float | None = None,
        trim: Callable[[int], int] | None = None,
        quiet_ms: int = QUIET_MS,
        idle_ms: int = IDLE_MS,
    ) -> None:
        super().__init__("vaultsh.fs.blocking_loop.framework")
        if spin_seconds is None:
            spin_seconds = SPIN_SECONDS if len(os.sched_getaffinity(0)) > 1 else 0.0
        self._spin_seconds = spin_seconds
        self._spinning = False
        self._trim = trim if trim is not None else _malloc_trim()
        self._quiet_ms = quiet_ms
        self._idle_ms = idle_ms
        self.on_idle: list[Callable[[], None]] = []
        self.lowlevel = self
        self.from_thread = self
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._closing = False
        self._waiting_on: int | None = None  # the descriptor a wait is blocked on, if any
        self._pollers: dict[int, Callable[[int], list[tuple[int, int]]]] = {}

    def _trim_heap(self) -> None:
        """Hand the C heap's free memory back to the system (see QUIET_MS)."""
        if self._trim is not None:
            self._trim(0)

    @property
    def spinning(self) -> bool:
        """Whether the next wait looks for a request before it sleeps."""
        return self._spinning

    def current_trio_token(self) -> object:
        return self

    def current_task(self) -> type[_Task]:
        return _Task

    def open_nursery(self) -> _Nursery:
        return _Nursery()

    def _poll_for(self, fd: int) -> Callable[[int], list[tuple[int, int]]]:
        poll = self._pollers.get(fd)
        if poll is None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            poll = self._pollers[fd] = poller.poll
        return poll

    def _wait_quietly(self, poll: Callable[[int], list[tuple[int, int]]]) -> list[tuple[int, int]]:
        """poll(2) until something is ready, trimming the heap after QUIET_MS and dropping
        idle memory after IDLE_MS without a request."""
        if self._trim is None and not self.on_idle:
            return poll(-1)
        ready = poll(self._quiet_ms)
        if ready:
            return ready
        self._trim_heap()
        ready = poll(max(self._idle_ms - self._quiet_ms, 0))
        if ready:
            return ready
        for release in self.on_idle:
            release()
        self._trim_heap()
        return poll(-1)

    async def wait_readable(self, fd: int) -> None:
        # POLLERR/POLLHUP (the mount went away) count as readable: the read then ends the loop.
        # A signal interrupts poll(2); Python runs its handler and polls again (PEP 475).
        poll = self._poll_for(fd)
        self._waiting_on = fd
        try:
            ready = None
            if self._spinning:
                deadline = monotonic() + self._spin_seconds
                while not (ready := poll(0)) and monotonic() < deadline:
                    pass
            if not ready:
                began = monotonic()
                ready = self._wait_quietly(poll)
                # Spin before the next wait only while requests come back to back.
                self._spinning = monotonic() - began < self._spin_seconds
        finally:
            self._waiting_on = None
        if self._closing or any(rfd == self._wake_r for rfd, _ in ready):
            raise ClosedResourceError
        return None

    def idle(self) -> bool:
        """True while the loop waits for a request and none is queued (callable from any thread)."""
        fd = self._waiting_on
        if fd is None:
            return False
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return not poller.poll(0) and self._waiting_on == fd

    def notify_closing(self, fd: int) -> None:
        self._closing = True
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        self._pollers.clear()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


METADATA = "importlib.metadata"


class _NoMetadata(types.ModuleType):
    """What pyfuse3 imports from importlib.metadata (for its `__version__` only), answering
    "unknown": the real module pulls in email, zipfile and more, ~15 ms and ~1 MiB a mount."""

    class PackageNotFoundError(ModuleNotFoundError):
        pass

    def __init__(self) -> None:
        super().__init__(METADATA)

    def version(self, distribution_name: str) -> str:
        raise self.PackageNotFoundError(distribution_name)


class _LazyPickle(types.ModuleType):
    """What pyfuse3 imports from pickle: the exception its objects' `__reduce__` raises. The
    real module costs a mount ~0.7 MiB; pyfuse3 never pickles anything."""

    class PicklingError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pickle")


class _LazyQueue(types.ModuleType):
    """What pyfuse3 imports from queue: `Queue`, made only by `invalidate_entry` (which the
    real module then provides); importing it up front costs a mount ~0.6 MiB."""

    def __init__(self) -> None:
        super().__init__("queue")

    @staticmethod
    def Queue(maxsize: int = 0) -> object:  # the name pyfuse3 calls
        import queue

        return queue.Queue(maxsize)


def _pyfuse3_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyfuse3")
    except PackageNotFoundError:
        return "?"


def install() -> tuple[BlockingFramework, types.ModuleType]:
    """Import pyfuse3 with a BlockingFramework in place of trio; returns both.

    Call before anything in the process imports pyfuse3 (else trio is already loaded, though
    pyfuse3 still runs on the framework from now on). `sys.modules` is restored afterwards,
    so an explicit `import trio` (or `importlib.metadata`, `pickle`, `queue`) elsewhere still
    gets the real one.
    """
    framework = BlockingFramework()
    if "pyfuse3" not in sys.modules and "trio" not in sys.modules:
        stand_ins: dict[str, types.ModuleType] = {"trio": framework}
        for stand_in in (_NoMetadata(), _LazyPickle(), _LazyQueue()):
            if stand_in.__name__ not in sys.modules:
                stand_ins[stand_in.__name__] = stand_in
        sys.modules.update(stand_ins)
        try:
            import pyfuse3
        finally:
            for name, module in stand_ins.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    import pyfuse3

    if not hasattr(pyfuse3, "trio"):
        framework.close()
        raise RuntimeError(f"pyfuse3 {_pyfuse3_version()} does not run its loop through a `trio` global")
    setattr(pyfuse3, "trio", framework)  # noqa: B010 - not in pyfuse3's type stubs
    return framework, pyfuse3


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run pyfuse3.main (or any coroutine that never suspends) to its end in this thread."""
    coro = main()
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("a FUSE request handler waited on an async framework; the blocking loop has none")
