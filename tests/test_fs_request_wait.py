"""The FUSE request wait that skips trio when a request is queued: unit checks and a real worker."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fuse_harness import require_fuse

pyfuse3 = pytest.importorskip("pyfuse3")
trio = pytest.importorskip("trio")

from vaultsh.fs import request_wait  # noqa: E402
from vaultsh.fs.request_wait import direct_wait, fuse_device_fd, install_direct_wait  # noqa: E402
from vaultsh.service import mount_protocol as proto  # noqa: E402
from vaultsh.service import mounts  # noqa: E402
from vaultsh.service.mounts import MountRequest  # noqa: E402
from vaultsh.vault.errors import VaultError  # noqa: E402
from vaultsh.vault.vault import Vault  # noqa: E402

WAIT = 30.0  # upper bound for polls; they normally end within a fraction of a second


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe standing in for /dev/fuse: readable exactly when a byte is queued."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


# A trio checkpoint is where the scheduler may run other tasks, and where a cancelled scope
# raises Cancelled: inside an already cancelled scope, a call that returns normally has not
# passed through the scheduler, and one that raises Cancelled has.


def test_queued_request_is_taken_without_a_scheduler_pass(pipe: tuple[int, int]) -> None:
    r, w = pipe
    wait = direct_wait(r, yield_every=1000)
    os.write(w, b"x")

    async def main() -> list[bool]:
        with trio.CancelScope() as scope:
            scope.cancel()
            return [await wait() for _ in range(5)]

    assert trio.run(main) == [True] * 5


def test_a_long_burst_still_lets_other_tasks_run(pipe: tuple[int, int]) -> None:
    r, w = pipe
    wait = direct_wait(r, yield_every=4)
    os.write(w, b"x")

    async def main() -> list[str]:
        seen = []
        for _ in range(2):
            with trio.CancelScope() as scope:
                scope.cancel()
                for _ in range(4):
                    seen.append("request" if await wait() else "end")
            if scope.cancelled_caught:
                seen.append("scheduler")
        return seen

    # Every 4th wait is a checkpoint; the other three return without one.
    assert trio.run(main) == ["request"] * 3 + ["scheduler"] + ["request"] * 3 + ["scheduler"]


def test_wait_sleeps_until_a_request_arrives(pipe: tuple[int, int]) -> None:
    r, w = pipe
    wait = direct_wait(r)

    async def main() -> tuple[bool, bool]:
        result: list[bool] = []

        async def waiter() -> None:
            result.append(await wait())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(0.05)
            pending = not result
            os.write(w, b"x")
        return pending, result == [True]

    assert trio.run(main) == (True, True)


def test_wait_ends_the_loop_when_the_descriptor_is_closed(pipe: tuple[int, int]) -> None:
    r, _w = pipe
    wait = direct_wait(r)

    async def main() -> list[bool]:
        result: list[bool] = []

        async def waiter() -> None:
            result.append(await wait())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(0.01)
            trio.lowlevel.notify_closing(r)  # what pyfuse3.terminate() does
        return result

    assert trio.run(main) == [False]


def test_install_replaces_the_hook_only_when_it_can(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    stock = pyfuse3._wait_fuse_readable
    monkeypatch.setattr(pyfuse3, "_wait_fuse_readable", stock)  # restored after the test
    monkeypatch.setattr(request_wait, "fuse_device_fd", lambda: None)
    assert install_direct_wait() is False  # no /dev/fuse descriptor found
    assert pyfuse3._wait_fuse_readable is stock
    assert install_direct_wait(pipe[0]) is True
    assert pyfuse3._wait_fuse_readable is not stock
    monkeypatch.setattr(pyfuse3, "_wait_fuse_readable", stock)
    monkeypatch.setattr(pyfuse3, "__version__", "4.0.0")
    assert install_direct_wait(pipe[0]) is False  # an unknown loop is left alone
    assert pyfuse3._wait_fuse_readable is stock
    monkeypatch.undo()
    monkeypatch.delattr(pyfuse3, "_wait_fuse_readable")
    assert install_direct_wait(pipe[0]) is False  # a pyfuse3 without the hook is left alone
    assert not hasattr(pyfuse3, "_wait_fuse_readable")


def test_fuse_device_fd_needs_exactly_one_open_device() -> None:
    require_fuse()
    assert fuse_device_fd() is None
    first = os.open("/dev/fuse", os.O_RDWR)
    try:
        assert fuse_device_fd() == first
        second = os.open("/dev/fuse", os.O_RDWR)
        try:
            assert fuse_device_fd() is None  # ambiguous: leave pyfuse3 alone
        finally:
            os.close(second)
    finally:
        os.close(first)


# -- a real mount worker --------------------------------------------------------------------


def wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def worker_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """A forward vault mounted by the real worker: (mountpoint, worker pid); torn down always."""
    require_fuse()
    base = Path(tempfile.mkdtemp(prefix="vsh-"))  # short: unix socket paths are limited
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    cipher = tmp_path / "cipher"
    cipher.mkdir()
    _conf, key = Vault.init(cipher, b"pw", logn=10)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    info = mounts.mount(MountRequest(cipher, mnt), key)
    try:
        yield mnt, info.pid
    finally:
        if mounts.mounted_at(mnt):
            with contextlib.suppress(VaultError):
                mounts.unmount(mnt)
        if mounts.mounted_at(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)
        if proto.process_alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


class Burst:
    """A thread sending small requests back to back (what `ls -l` does) until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    os.getxattr(self.path, "security.selinux", follow_symlinks=False)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
                self.sent += 1
        except BaseException as e:  # reported to the test thread
            self.failure = e

    def __enter__(self) -> Burst:
        self._thread.start()
        wait_for(lambda: self.sent > 100 or self.failure is not None, "the burst to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)


def test_worker_answers_its_control_socket_during_a_burst(worker_mount: tuple[Path, int]) -> None:
    mnt, pid = worker_mount
    target = mnt / "f"
    target.write_bytes(b"x")
    with Burst(target) as burst:
        seen = []
        for _ in range(5):
            status = mounts.status(mnt)
            assert status.alive and status.pid == pid
            seen.append((burst.sent, status.stats["requests"]))
            time.sleep(0.02)
        assert burst.failure is None
    # Both kept going: the burst was served while the status requests were answered.
    assert seen[-1][0] > seen[0][0] and seen[-1][1] > seen[0][1]


def test_worker_stops_on_sigterm_during_a_burst(worker_mount: tuple[Path, int]) -> None:
    mnt, pid = worker_mount
    target = mnt / "f"
    target.write_bytes(b"x")
    with Burst(target) as burst:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not mounts.mounted_at(mnt), "the mount to go away")
        wait_for(lambda: not proto.process_alive(pid), "the worker to exit")
    assert burst.failure is None or isinstance(burst.failure, OSError)
