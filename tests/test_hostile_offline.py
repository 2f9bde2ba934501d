"""Hostile cipher dirs against the key check, the config reader, listings and the shell/CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_harness import force_unmount, require_fuse
from gocryptfs_harness import CmdResult, run_cmd, vaultsh_env, write_passfile

from vaultsh.vault.detect import detect
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.vault import Vault

PASSWORD = "hostile pässword"
# What desktops and sync tools leave in every folder they look at: no key decrypts these.
STRAYS = {
    ".DS_Store": b"\0\0\0\1Bud1" + bytes(range(256)) * 16,
    "desktop.ini": b"[.ShellClassInfo]\r\nIconResource=C:\\x.ico,0\r\n",
    "Thumbs.db": bytes(range(256)) * 40,
}


def cli(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> CmdResult:
    return run_cmd([sys.executable, "-m", "vaultsh", *args], input=stdin, env=env or vaultsh_env())


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    return write_passfile(tmp_path / "pw", PASSWORD)


def new_vault(where: Path) -> Vault:
    where.mkdir()
    Vault.init(where, PASSWORD.encode(), logn=10)
    return Vault.open(where, password=PASSWORD.encode())


# -- a key unwrapped from the config is never second-guessed; strays never vote ---------------


@pytest.fixture
def dirs_and_strays(tmp_path: Path) -> tuple[Path, str]:
    """A vault whose root holds only directories, plus what Finder and Explorer leave there."""
    with new_vault(tmp_path / "cipher") as vault:
        vault.mkdir("docs")
        vault.write_file("docs/a.txt", b"inside a directory")
        key = format_master_key(vault.keys.master_key)
    for name, data in STRAYS.items():
        (tmp_path / "cipher" / name).write_bytes(data)
    return tmp_path / "cipher", key


@pytest.fixture
def mount_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_fuse()
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        yield {**vaultsh_env(), "XDG_RUNTIME_DIR": str(run_dir)}
    finally:
        force_unmount(mnt)


def test_right_password_mounts_a_root_of_directories_and_strays(
    dirs_and_strays: tuple[Path, str], pw: Path, tmp_path: Path, mount_env: dict[str, str]
) -> None:
    cipher, _key = dirs_and_strays
    mnt = tmp_path / "mnt"
    res = cli("mount", "--passfile", pw, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    assert sorted(os.listdir(mnt)) == ["docs"]
    cli("unmount", mnt, env=mount_env).check()
    # A key the password unwrapped is proven by the config's GCM tag: even a root where most
    # names are shaped like cipher names but decrypt to nothing (another vault's files
    # copied in) does not make the mount refuse it.
    for i in range(3):
        (cipher / ("B" * 21 + "ABCD"[i])).write_bytes(b"from another vault")
    res = cli("mount", "--passfile", pw, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    cli("unmount", mnt, env=mount_env).check()


def test_master_key_unlocks_a_root_of_directories_and_strays(
    dirs_and_strays: tuple[Path, str], pw: Path, tmp_path: Path, mount_env: dict[str, str]
) -> None:
    cipher, key = dirs_and_strays
    keyfile = tmp_path / "key"
    keyfile.write_text(key + "\n")
    mnt = tmp_path / "mnt"
    res = cli("mount", "--masterkey-file", keyfile, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    assert (mnt / "docs" / "a.txt").read_bytes() == b"inside a directory"
    cli("unmount", mnt, env=mount_env).check()
    raw = bytes.fromhex(key.replace("-", ""))
    assert detect(cipher, raw).key_fits is True
    # passwd with the master key proves it on the vault first: the strays must not stop it.
    res = cli("passwd", "--masterkey-file", keyfile, "--new-passfile", pw, cipher)
    assert res.returncode == 0, res.err
    # A wrong key is still refused: the directories' names do not decrypt under it.
    wrong = bytes(b ^ 0x33 for b in raw)
    assert Vault.open(cipher, master_key=wrong).key_fits() is False
    assert detect(cipher, wrong).key_fits is False
    keyfile.write_text(format_master_key(wrong))
    res = cli("mount", "--masterkey-file", keyfile, cipher, mnt, env=mount_env)
    assert res.returncode == 14 and len(res.err.strip().splitlines()) == 1
