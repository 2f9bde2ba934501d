"""Test helpers: serve our filesystems at a mountpoint from a forked child, and compare mounted trees."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from gocryptfs_harness import run_cmd, skip_or_fail

from vaultsh.service import mounts
from vaultsh.vault.errors import VaultError
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault


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


def mount_vault(
    cipherdir: Path, mountpoint: Path, password: str, *, read_only: bool = False
) -> AbstractContextManager[Path]:
    """Serve our forward filesystem for `cipherdir` at `mountpoint`, as the mount worker does."""
    require_fuse()
    from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations  # imports pyfuse3

    return mounted_ops(
        lambda: ForwardOperations(Vault.open(cipherdir, password=password.encode()), read_only=read_only),
        mountpoint,
        set(FORWARD_MOUNT_OPTIONS),
    )


def mount_view(
    plain: Path,
    mountpoint: Path,
    password: str,
    *,
    excludes: tuple[str, ...] = (),
    cache_timeout: float | None = None,
) -> AbstractContextManager[Path]:
    """Serve our reverse view of the plain dir `plain` at `mountpoint`, as the mount worker does
    (with the kernel's cache time of names and attributes, unless `cache_timeout` is given)."""
    require_fuse()
    from vaultsh.fs.reverse import CACHE_TIMEOUT, REVERSE_MOUNT_OPTIONS, ReverseOperations  # imports pyfuse3

    timeout = CACHE_TIMEOUT if cache_timeout is None else cache_timeout
    return mounted_ops(
        lambda: ReverseOperations(
            ReverseView.open(plain, password=password.encode(), excludes=excludes), cache_timeout=timeout
        ),
        mountpoint,
        set(REVERSE_MOUNT_OPTIONS),
    )


def exact_manifest(root: Path) -> dict[str, tuple[object, ...]]:
    """path -> (type bits and mode, size, mtime in ns, sha256 or link target), below root."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                content: object = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                content = None
            out[p.relative_to(root).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def assert_same_view(ours: Path, theirs: Path) -> None:
    """Two mounted trees hold the same bytes (diff -r) and the same modes, sizes and mtimes."""
    diff = run_cmd(["diff", "-r", "--no-dereference", ours, theirs])
    assert diff.returncode == 0, diff.describe()
    mine, gocryptfs = exact_manifest(ours), exact_manifest(theirs)
    assert sorted(mine) == sorted(gocryptfs)
    for path, expected in gocryptfs.items():
        assert mine[path] == expected, path


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
