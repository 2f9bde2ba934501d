"""Short and stalled writes: every small file the format core writes comes out whole or fails."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from vault_factory import FORMAT_OPTIONS, new_vault

from vaultsh.vault import fdio, fsck
from vaultsh.vault.config import load_config
from vaultsh.vault.errors import ExitCode, FsError, WriteConfError
from vaultsh.vault.fdio import pwrite_all, write_all
from vaultsh.vault.names import DIRIV_NAME, read_diriv, write_diriv

REAL_WRITE = os.write
REAL_PWRITE = os.pwrite


def _short_write(fd: int, data: bytes | memoryview) -> int:
    """os.write as a nearly full disk or a pipe may answer: at most 3 bytes at a time."""
    return REAL_WRITE(fd, bytes(data)[:3])


def _short_pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
    return REAL_PWRITE(fd, bytes(data)[:3], offset)


def _stalled(*_args: object) -> int:
    """A write that takes nothing and reports no error: retried naively, it would spin forever."""
    return 0


def _fd(tmp_path: Path) -> int:
    return os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def test_write_all_retries_short_writes_until_everything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = _fd(tmp_path)
    monkeypatch.setattr(os, "write", _short_write)
    monkeypatch.setattr(os, "pwrite", _short_pwrite)
    try:
        write_all(fd, b"0123456789")
        pwrite_all(fd, memoryview(b"abcdefg"), 2)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"01abcdefg9"


@pytest.mark.parametrize(
    "call",
    [lambda fd: write_all(fd, b"data"), lambda fd: pwrite_all(fd, b"data", 0)],
    ids=["write_all", "pwrite_all"],
)
def test_a_write_that_makes_no_progress_is_an_error(
    call: Callable[[int], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = _fd(tmp_path)
    monkeypatch.setattr(os, "write", _stalled)
    monkeypatch.setattr(os, "pwrite", _stalled)
    try:
        with pytest.raises(OSError) as raised:
            call(fd)
    finally:
        os.close(fd)
    assert raised.value.errno == errno.EIO


def test_a_stalled_config_write_fails_and_leaves_the_config_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_vault(tmp_path / "v")
    conf_path = tmp_path / "v" / "gocryptfs.conf"
    before = conf_path.read_bytes()
    conf = load_config(conf_path)
    monkeypatch.setattr(os, "write", _stalled)
    with pytest.raises(WriteConfError) as raised:
        conf.write(conf_path)
    monkeypatch.undo()
    assert raised.value.exit_code == ExitCode.WRITE_CONF
    assert conf_path.read_bytes() == before
    assert sorted(p.name for p in conf_path.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_a_diriv_written_in_short_pieces_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", _short_write)
    iv = write_diriv(tmp_path, sync=False)
    monkeypatch.undo()
    assert (tmp_path / DIRIV_NAME).stat().st_size == len(iv) == 16
    assert read_diriv(tmp_path) == iv


# -- a full disk: the space a write takes is reserved before any of it is written ----------------


def test_a_write_into_a_full_disk_fails_whole_and_leaves_the_file_as_it_was(tiny_disk: Path) -> None:
    with new_vault(tiny_disk / "cipher") as vault:
        first = os.urandom(300 * 1024 + 123)  # ends inside a block: the next write rewrites it
        vault.write_file("f", first)
        cipher = vault.cipher_path("f")
        before = cipher.read_bytes()
        with vault.open_file("f", writable=True) as f, pytest.raises(FsError) as e:
            f.write(len(first), os.urandom(2 * 1024 * 1024))  # twice the whole disk
        assert e.value.errno == errno.ENOSPC and "No space left on device" in str(e.value)
        assert cipher.read_bytes() == before  # not a byte written, the old last block intact
        assert vault.read_file("f") == first
        # A new file that does not fit leaves no header behind either.
        with pytest.raises(FsError) as e:
            vault.write_file("g", os.urandom(2 * 1024 * 1024))
        assert e.value.errno == errno.ENOSPC
        assert not vault.exists("g") or vault.read_file("g") == b""
        # What does fit is written as before, and a hole far out takes no space.
        with vault.open_file("f", writable=True) as f:
            f.write(len(first), b"tail")
            f.write(1 << 30, b"far")
            assert f.read(0, len(first) + 4) == first + b"tail"
            assert f.read(1 << 30, 10) == b"far"
        assert os.stat(cipher).st_blocks * 512 < 1024 * 1024


def _fake_fallocate(monkeypatch: pytest.MonkeyPatch, fs_type: int, answer: int) -> list[int]:
    """fallocate(2) that fails with `answer` (0: succeeds) on a filesystem of type `fs_type`;
    returns the lengths it was asked for."""
    calls: list[int] = []

    def fallocate(fd: int, mode: int, offset: int, length: int) -> int:
        calls.append(length)
        if answer:
            ctypes.set_errno(answer)
            return -1
        return 0

    monkeypatch.setattr(fdio, "_fallocate", lambda: fallocate)
    monkeypatch.setattr(fdio, "_filesystem_type", lambda fd: fs_type)
    monkeypatch.setattr(fdio, "_reserve_on_device", {})
    return calls


def test_a_filesystem_without_fallocate_is_written_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_fallocate(monkeypatch, 0xEF53, errno.EOPNOTSUPP)
    vault = new_vault(tmp_path / "cipher")
    data = os.urandom(70_000)
    vault.write_file("a", data)
    vault.write_file("b", data)
    assert vault.read_file("a") == vault.read_file("b") == data
    assert len(calls) == 1  # asked once for this filesystem, then no more


def test_btrfs_is_written_without_reserving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_fallocate(monkeypatch, 0x9123683E, 0)
    vault = new_vault(tmp_path / "cipher")
    vault.write_file("a", b"x" * 10_000)
    assert vault.read_file("a") == b"x" * 10_000
    assert calls == []


@pytest.mark.parametrize("fmt", list(FORMAT_OPTIONS))
def test_other_filesystems_reserve_what_each_write_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    calls = _fake_fallocate(monkeypatch, 0xEF53, 0)
    vault = new_vault(tmp_path / "cipher", **FORMAT_OPTIONS[fmt])
    vault.write_file("a", b"x" * 10_000)
    assert sum(calls) == os.stat(vault.cipher_path("a")).st_size  # header and three blocks
    with vault.open_file("a", writable=True) as f:
        calls.clear()
        f.write(5000, b"y" * 100)  # inside block 1: that block is written again, whole
    assert calls == [vault.content.cipher_block]


def _fill(disk: Path) -> None:
    """Write a filler file on `disk` until nothing more fits."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as e:
            while True:
                os.write(fd, bytes(4096))
        assert e.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_metadata_that_does_not_fit_leaves_nothing_behind(tiny_disk: Path) -> None:
    """On a full disk, names and directories are not made at all: no empty gocryptfs.diriv
    in a new directory, no empty `.name` sidecar of a long name (§6.5, §6.7)."""
    long = "l" * 200  # encrypted, longer than 255: stored under a hash with a sidecar
    with new_vault(tiny_disk / "cipher") as vault:
        vault.write_file("kept", b"kept")
        vault.mkdir("dir")
        _fill(tiny_disk)
        before = {p: sorted(os.listdir(vault.cipher_path(p))) for p in ("", "dir")}
        attempts: dict[str, Callable[[], None]] = {
            "mkdir": lambda: vault.mkdir("dir/new"),
            "mkdir long": lambda: vault.mkdir(f"dir/{long}"),
            "create long": lambda: vault.write_file(long, b"x"),
            "rename to long": lambda: vault.rename("kept", f"dir/{long}"),
            "symlink long": lambda: vault.symlink("t" * 3000, long),
        }
        for what, attempt in attempts.items():
            with pytest.raises(FsError) as e:
                attempt()
            assert e.value.errno == errno.ENOSPC, what
            assert "No space left on device" in str(e.value), what
            after = {p: sorted(os.listdir(vault.cipher_path(p))) for p in ("", "dir")}
            assert after == before, what
        (tiny_disk / "filler").unlink()
        assert vault.read_file("kept") == b"kept"
        assert list(fsck.check(vault)) == []
