"""Test helper: serve a pyfuse3 Operations object at a mountpoint from a forked child process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gocryptfs_harness import skip_or_fail

from vaultsh.service import mounts
from vaultsh.vault.errors import VaultError


def require_fuse() -> None:
    """Skip (fail under CI=true) unless pyfuse3, /dev/fuse and fusermount3 are present."""
    try:
        import pyfuse3  # noqa: F401
        import trio  # noqa: F401
    except ImportError as e:
        skip_or_fail(f"pyfuse3/trio not installed (the [fuse] extra): {e}")
    if not os.path.exists("/dev/fuse"):
        skip_or_fail("/dev/fuse is missing: FUSE mounts cannot run here")
    if shutil.which("fusermount3") is None:
        skip_or_fail("fusermount3 is missing (Debian package fuse3)")


def _wait_mounted(mountpoint: Path, pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.ismount(mountpoint):
            return
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            raise RuntimeError(f"FUSE child exited before mounting (status {status})")
        time.sleep(0.02)
    raise TimeoutError(f"{mountpoint} not mounted after {timeout}s")


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `cond` until it holds; AssertionError naming `what` after `timeout` seconds (an
    upper bound: the polls normally end within a fraction of a second)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def force_unmount(mountpoint: Path) -> None:
    if os.path.ismount(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False, capture_output=True)


@contextlib.contextmanager
def mounted_ops(
    make_ops: Callable[[], Any], mountpoint: Path, options: set[str] | None = None
) -> Iterator[Path]:
    """Fork a child that builds `make_ops()` and serves it at `mountpoint` until unmounted.

    The Operations are built in the child, after the fork, so no trio or pyfuse3 state is
    shared with the test process. The fixture unmounts with fusermount3 and reaps the child.
    """
    require_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # child: serve, never return into pytest
        code = 0
        try:
            import pyfuse3
            import trio

            ops = make_ops()
            opts = {"fsname=vaultsh-test"} | (options or set())  # as the worker: no default_permissions
            pyfuse3.init(ops, str(mountpoint), opts)
            try:
                trio.run(pyfuse3.main)
            finally:
                pyfuse3.close(unmount=True)
        except BaseException:  # report anything, then leave the child
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    try:
        _wait_mounted(mountpoint, pid)
        yield mountpoint
    finally:
        subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, capture_output=True)
        for _ in range(200):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            force_unmount(mountpoint)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def kernel_mounted(path: Path) -> bool:
    """Whether the kernel lists `path` as a mount point, read from /proc/self/mountinfo.

    Unlike os.path.ismount this never stats the path, which a dead FUSE mount answers with
    ENOTCONN (ismount then says False although the mount is still there).
    """
    with open("/proc/self/mountinfo") as f:
        return str(path) in {line.split(" ")[4] for line in f}


@contextlib.contextmanager
def cleaned_up(mountpoint: Path) -> Iterator[None]:
    """Whatever a test leaves, unmount it (lazily, as a dead mount needs) and drop its record."""
    try:
        yield
    finally:
        with contextlib.suppress(VaultError, OSError):
            mounts.unmount(mountpoint)
        if kernel_mounted(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False)
