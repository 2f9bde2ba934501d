"""The private copy behind the TUI's o and E: where it goes, its name, saving back atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from vault_factory import NewVault

from vaultsh.service.tempcopy import private_copy, save_back
from vaultsh.service.transfer import import_
from vaultsh.vault.errors import FsError
from vaultsh.vault.file import VaultFile
from vaultsh.vault.vault import Vault

MASTER_KEY = bytes(range(32))


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_vault: NewVault) -> Vault:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    v = new_vault(tmp_path / "vault", master_key=MASTER_KEY)
    v.mkdir("sub")
    v.mkdir("sub/dir")
    return v


@pytest.mark.parametrize(
    ("name", "local"),
    [("notes.txt", "notes.txt"), ("\x1b[31mred", "_[31mred"), ("-rf", "rf"), ("[b]x", "[b]x")],
)
def test_the_copy_is_private_and_named_safely(vault: Vault, name: str, local: str) -> None:
    path = f"sub/dir/{name}"
    vault.write_file(path, b"secret text\n")
    copy = private_copy(path, vault.iter_file(path))
    try:
        assert copy.directory.parent == Path(os.environ["XDG_RUNTIME_DIR"])
        assert stat.S_IMODE(os.stat(copy.directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(copy.file).st_mode) == 0o600
        assert copy.file.name == local
        assert copy.file.read_bytes() == b"secret text\n"
        assert not copy.changed()
    finally:
        copy.remove()
    assert not copy.directory.exists()


def test_a_runtime_dir_others_can_enter_is_not_used(vault: Vault, tmp_path: Path) -> None:
    os.chmod(os.environ["XDG_RUNTIME_DIR"], 0o755)
    vault.write_file("a.txt", b"x")
    copy = private_copy("a.txt", vault.iter_file("a.txt"))
    try:
        assert copy.directory.parent != Path(os.environ["XDG_RUNTIME_DIR"])
        assert stat.S_IMODE(os.stat(copy.directory).st_mode) == 0o700
    finally:
        copy.remove()


def test_save_back_replaces_the_contents_and_keeps_the_mode(vault: Vault) -> None:
    vault.write_file("sub/dir/a.txt", b"old\n")
    vault.chmod("sub/dir/a.txt", 0o600)
    copy = private_copy("sub/dir/a.txt", vault.iter_file("sub/dir/a.txt"))
    copy.file.write_bytes(b"new contents\n" * 1000)
    assert copy.changed()
    save_back(vault, copy)
    copy.remove()
    assert vault.read_file("sub/dir/a.txt") == b"new contents\n" * 1000
    assert vault.stat("sub/dir/a.txt").mode & 0o777 == 0o600
    assert [e.name for e in vault.listdir("sub/dir", include_bad=True)] == ["a.txt"]


def test_a_copy_turned_symlink_is_not_followed_and_nothing_changes(vault: Vault, tmp_path: Path) -> None:
    vault.write_file("sub/dir/a.txt", b"old\n")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not for the vault\n")
    copy = private_copy("sub/dir/a.txt", vault.iter_file("sub/dir/a.txt"))
    copy.file.unlink()
    copy.file.symlink_to(outside)  # an editor (or someone) swapped it
    with pytest.raises(OSError):
        save_back(vault, copy)
    copy.remove()
    assert vault.read_file("sub/dir/a.txt") == b"old\n"
    assert [e.name for e in vault.listdir("sub/dir", include_bad=True)] == ["a.txt"]


def test_a_file_gone_from_the_vault_meanwhile_is_reported_and_nothing_is_left(vault: Vault) -> None:
    vault.write_file("sub/dir/a.txt", b"old\n")
    copy = private_copy("sub/dir/a.txt", vault.iter_file("sub/dir/a.txt"))
    copy.file.write_bytes(b"edited\n")
    vault.unlink("sub/dir/a.txt")
    with pytest.raises(FsError):
        save_back(vault, copy)
    copy.remove()
    assert vault.listdir("sub/dir", include_bad=True) == []


def test_an_import_starting_in_the_directory_meanwhile_leaves_the_save_whole(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import cleans the temporary files of killed imports from its directory: the one a
    save is writing is in use and stays."""
    vault.write_file("sub/dir/a.txt", b"old\n")
    copy = private_copy("sub/dir/a.txt", vault.iter_file("sub/dir/a.txt"))
    copy.file.write_bytes(b"edited\n")
    other = tmp_path / "other.txt"
    other.write_bytes(b"imported meanwhile\n")
    real_fchmod = os.fchmod

    def import_then_fchmod(fd: int, mode: int) -> None:  # the save has written, not yet renamed
        monkeypatch.setattr(os, "fchmod", real_fchmod)
        import_(vault, other, "sub/dir")
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "fchmod", import_then_fchmod)
    save_back(vault, copy)
    copy.remove()
    assert vault.read_file("sub/dir/a.txt") == b"edited\n"
    assert sorted(e.name for e in vault.listdir("sub/dir", include_bad=True)) == ["a.txt", "other.txt"]


def test_the_new_contents_reach_the_disk_before_they_replace_the_old(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renamed over the file before its data is on disk, a crash could leave neither version."""
    vault.write_file("sub/dir/a.txt", b"old\n")
    copy = private_copy("sub/dir/a.txt", vault.iter_file("sub/dir/a.txt"))
    copy.file.write_bytes(b"edited\n")
    steps: list[str] = []
    real_fsync, real_rename = VaultFile.fsync, vault.rename_at

    def fsync(f: VaultFile) -> None:
        steps.append("fsync")
        real_fsync(f)

    def rename_at(*args: Any, **kwargs: Any) -> Any:
        steps.append("rename")
        return real_rename(*args, **kwargs)

    monkeypatch.setattr(VaultFile, "fsync", fsync)
    monkeypatch.setattr(vault, "rename_at", rename_at)
    save_back(vault, copy)
    copy.remove()
    assert steps == ["fsync", "rename"]
    assert vault.read_file("sub/dir/a.txt") == b"edited\n"
