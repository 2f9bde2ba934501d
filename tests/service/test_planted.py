"""A hostile cipher dir: planted symlinks are never followed, planted FIFOs never block."""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_mod
from pathlib import Path

import pytest
from fuse_harness import mount_vault
from gocryptfs_harness import run_vaultsh, write_passfile
from vault_factory import NewVault

from vaultsh.service import transfer
from vaultsh.vault.errors import FsError
from vaultsh.vault.names import DIRIV_NAME
from vaultsh.vault.vault import Vault

PASSWORD = "planted pässword"
OLD = b"the copy outside the vault: must never be read\n"
NEW = b"the real content\n"


@pytest.fixture
def planted(tmp_path: Path, new_vault: NewVault) -> tuple[Path, Path]:
    """A vault whose dir `d` (holding `f`) was replaced by a symlink to a copy outside the
    vault (same diriv and names, older content), plus an encrypted-looking name -> /etc."""
    cipher = tmp_path / "cipher"
    outside = tmp_path / "outside"
    with new_vault(cipher, PASSWORD) as vault:
        vault.mkdir("d")
        vault.write_file("d/f", OLD)
        cd = vault.cipher_path("d")
        shutil.copytree(cd, outside)
        vault.unlink("d/f")
        vault.write_file("d/f", NEW)
        # The real directory goes away; a link to the outside copy takes its name.
        vault.unlink("d/f")
        vault.rmdir("d")
        os.symlink(outside, cd)
        # A name that decrypts to "etc", pointing at the system's /etc.
        os.symlink("/etc", vault.cipher_path("etc"))
        vault.write_file("keep.txt", NEW)
    return cipher, outside


def test_vault_api_does_not_follow(planted: tuple[Path, Path]) -> None:
    cipher, outside = planted
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        kinds = {e.name: e.kind for e in vault.listdir("")}
        assert kinds == {"d": "symlink", "etc": "symlink", "keep.txt": "file"}
        for call in (
            lambda: vault.listdir("d"),
            lambda: vault.read_file("d/f"),
            lambda: vault.stat("d/f"),
            lambda: vault.listdir("etc"),
            lambda: vault.write_file("d/new", b"x"),
            lambda: vault.mkdir("d/sub"),
            lambda: vault.rename("keep.txt", "d/keep.txt"),
        ):
            with pytest.raises(FsError) as e:
                call()
            assert e.value.errno in (errno.ENOTDIR, errno.ENOENT)
    assert len(os.listdir(outside)) == 2  # its diriv and f, nothing written there


def test_export_import_rm_do_not_follow(planted: tuple[Path, Path], tmp_path: Path) -> None:
    cipher, outside = planted
    before = sorted(os.listdir(outside))
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        out = tmp_path / "out"
        out.mkdir()
        report = transfer.export(vault, "", out)
        # The links' targets are not encrypted: reported, never entered or copied.
        assert sorted(p for p, _ in report.failed) == ["d", "etc"]
        assert sorted(os.listdir(out)) == ["keep.txt"]
        src = tmp_path / "src"
        src.mkdir()
        (src / "x").write_bytes(b"x")
        with pytest.raises(FsError):
            transfer.import_(vault, src, "d/x")
        with pytest.raises(FsError):
            transfer.import_(vault, src / "x", "d")
    pw = write_passfile(tmp_path / "pw", PASSWORD)
    run_vaultsh("rm", "-r", "--passfile", pw, cipher, "d").check()
    run_vaultsh("rm", "-r", "--passfile", pw, cipher, "etc").check()
    assert sorted(os.listdir(outside)) == before
    assert os.path.isdir("/etc/") and os.listdir("/etc")
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert [e.name for e in vault.listdir("")] == ["keep.txt"]


def test_mount_does_not_follow(planted: tuple[Path, Path], tmp_path: Path) -> None:

    cipher, _outside = planted
    # live/f: the outside copy of `live` keeps the old content under the same cipher names.
    copy = tmp_path / "outside-live"
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        vault.mkdir("live")
        vault.write_file("live/f", OLD)
        clive = vault.cipher_path("live")
        shutil.copytree(clive, copy)
        vault.unlink("live/f")
        vault.write_file("live/f", NEW)
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        assert stat_mod.S_ISLNK(os.lstat(mnt / "d").st_mode)
        with pytest.raises(OSError):
            os.listdir(mnt / "d")
        with pytest.raises(OSError):
            (mnt / "d" / "f").read_bytes()
        assert stat_mod.S_ISLNK(os.lstat(mnt / "etc").st_mode)
        with pytest.raises(OSError):
            os.listdir(mnt / "etc")
        # The mount knows live/f by its cipher path. Behind its back the directory is swapped
        # for a link to the outside copy: reading then fails or shows what the vault held,
        # never the outside file.
        assert os.stat(mnt / "live" / "f").st_size == len(NEW)
        shutil.rmtree(clive)
        os.symlink(copy, clive)
        try:
            data: bytes | None = (mnt / "live" / "f").read_bytes()
        except OSError:
            data = None
        assert data != OLD


def test_planted_fifos_never_block(tmp_path: Path, new_vault: NewVault) -> None:
    cipher = tmp_path / "cipher"
    with new_vault(cipher, PASSWORD) as vault:
        vault.write_file("good.txt", NEW)
        vault.mkdir("sub")
        csub = vault.cipher_path("sub")
        os.mkfifo(vault.cipher_path("pipe"))
        long_name = "l" * 200
        vault.write_file(long_name, NEW)
        clong = vault.cipher_path(long_name)
    # The sub directory's IV and the long name's sidecar become FIFOs.
    os.unlink(csub / DIRIV_NAME)
    os.mkfifo(csub / DIRIV_NAME)
    sidecar = clong.with_name(clong.name + ".name")
    os.unlink(sidecar)
    os.mkfifo(sidecar)
    # A FIFO where a file's content should be.
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        vault.write_file("fifo-file", b"")
        cfifo = vault.cipher_path("fifo-file")
    os.unlink(cfifo)
    os.mkfifo(cfifo)
    pw = write_passfile(tmp_path / "pw", PASSWORD)
    listing = run_vaultsh("ls", "-R", "-a", "--passfile", pw, cipher)
    assert "good.txt" in listing.out
    out = tmp_path / "out"
    res = run_vaultsh("export", "--passfile", pw, cipher, "/", out)
    assert res.returncode != 0 and "sub" in res.err  # the sub dir's IV is reported
    assert (out / "good.txt").read_bytes() == NEW
    assert not (out / "fifo-file").exists()
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        with pytest.raises(FsError) as e:
            vault.read_file("fifo-file")
        assert e.value.errno == errno.EINVAL
