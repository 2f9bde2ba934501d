"""Both FUSE frontends count, translate and log failures by the one rule of vaultsh.fs.frontend."""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_harness import cleaned_up, require_fuse
from vault_factory import NewVault

from vaultsh.service import mounts
from vaultsh.service.mounts import MountRequest
from vaultsh.vault.vault import Vault

PASSWORD = b"frontend test password"
TAMPERED = "tampered.bin"


def _frontends() -> tuple[type, type, type]:
    require_fuse()
    from vaultsh.fs.forward import ForwardOperations
    from vaultsh.fs.frontend import FuseFrontend
    from vaultsh.fs.reverse import ReverseOperations

    return FuseFrontend, ForwardOperations, ReverseOperations


# Handlers either frontend defines without the shared wrapper, and why: `forget` is no request
# of a user (it may not fail), the others cannot fail and only count the use.
UNWRAPPED = {
    # forward getxattr answers security.capability itself and hands the rest to `_getxattr`
    "forward": {"forget", "flush", "getxattr"},
    "reverse": {"forget", "flush", "fsync", "fsyncdir", "releasedir"},
}


def test_both_frontends_answer_requests_through_the_same_code() -> None:
    frontend_base, forward, reverse = _frontends()
    import pyfuse3

    from vaultsh.fs.frontend import request

    shared = request(lambda self: None).__code__
    handlers = {
        name
        for name, member in vars(pyfuse3.Operations).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    for mode, cls in (("forward", forward), ("reverse", reverse)):
        assert issubclass(cls, frontend_base)
        # Counting, logging and teardown are the base's, not redone per mode.
        for shared_method in ("count_failure", "internal_error", "close"):
            assert shared_method not in vars(cls), (mode, shared_method)
        own = handlers & set(vars(cls))
        wrapped = {name for name in own if getattr(cls, name).__code__ is shared}
        assert wrapped == own - UNWRAPPED[mode], mode
        assert wrapped >= {"lookup", "getattr", "open", "read", "readdir", "release"}, mode


# -- on real mounts, as `vaultsh mounts` shows the counter -----------------------------------


@contextlib.contextmanager
def mounted(request: MountRequest, key: bytes) -> Iterator[Path]:
    """A mount by the worker process, as `vaultsh mount` makes it; unmounted afterwards."""
    require_fuse()
    request.mountpoint.mkdir()
    with cleaned_up(request.mountpoint):
        mounts.mount(request, key)
        yield request.mountpoint


def errors_of(mountpoint: Path) -> int:
    return int(mounts.status(mountpoint).stats["errors"])


def tamper_block_zero(path: Path) -> None:
    """Flip one byte of a file's first block: it no longer authenticates."""
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([byte ^ 1]))


def assert_refusals_uncounted_damage_counted(mnt: Path, missing: str, damaged: Path) -> None:
    """ENOENT leaves the counter as it was; EIO raises it."""
    before = errors_of(mnt)
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / missing)
    with pytest.raises(FileNotFoundError):
        (mnt / missing).read_bytes()
    assert errors_of(mnt) == before
    with pytest.raises(OSError) as info:
        damaged.read_bytes()
    assert info.value.errno == errno.EIO
    assert errors_of(mnt) > before


def test_forward_and_reverse_mounts_count_damage_not_refusals(tmp_path: Path, new_vault: NewVault) -> None:
    """A reverse view of a forward mount: the tampered block is EIO in the forward mount, and
    through it EIO from the plain file the reverse mount reads. Each counts it; neither
    counts a missing name, nor the reverse mount an excluded one."""
    cipher = tmp_path / "cipher"
    vault = new_vault(cipher, PASSWORD)
    key = vault.keys.master_key
    vault.write_file(TAMPERED, b"x" * 10000)
    vault.write_file("excluded.txt", b"hidden in the view")
    tamper_block_zero(vault.cipher_path(TAMPERED))

    with mounted(MountRequest(cipher, tmp_path / "plain"), key) as plain:
        assert_refusals_uncounted_damage_counted(plain, "no-such-name", plain / TAMPERED)

        # The forward mount's plain tree, seen encrypted; its config is written through the mount.
        _conf, reverse_key = Vault.init(plain, PASSWORD, logn=10, reverse=True)
        request = MountRequest(plain, tmp_path / "view", reverse=True, excludes=("excluded.txt",))
        with mounted(request, reverse_key) as view:
            from vaultsh.vault.reverse import ReverseView

            listing = ReverseView.open(plain, password=PASSWORD).listdir("")
            damaged = next(e for e in listing if e.plain == TAMPERED).cipher_name
            excluded = next(e for e in listing if e.plain == "excluded.txt").cipher_name
            before = errors_of(view)
            with pytest.raises(PermissionError):  # EPERM, as gocryptfs -exclude answers (§9.3)
                os.stat(view / excluded)
            assert errors_of(view) == before
            assert_refusals_uncounted_damage_counted(view, "no-such-name", view / damaged)
