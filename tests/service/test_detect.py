"""Detection of a vault's settings by trial, on vaults made by vaultsh, and on hostile folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from vault_factory import new_vault

from vaultsh.service import recover
from vaultsh.vault import detect
from vaultsh.vault.config import CONF_NAME, load_config
from vaultsh.vault.errors import MasterKeyError, UsageError

PASSWORD = b"pw"


def made(root: Path, **flags: Any) -> bytes:
    with new_vault(root, PASSWORD, **flags) as v:
        v.mkdir("sub")
        v.write_file("sub/a.txt", b"a" * 5000)
        v.write_file("b" * 120, b"long name")
        v.symlink("sub/a.txt", "link")
    (root / CONF_NAME).unlink()
    return v.keys.master_key


@pytest.mark.parametrize(
    ("flags", "content", "names"),
    [
        ({}, detect.GCM, detect.DIRIV),
        ({"aessiv": True}, detect.SIV, detect.DIRIV),
        ({"xchacha": True, "deterministic_names": True}, detect.XCHACHA, detect.DETERMINISTIC),
        ({"plaintext_names": True}, detect.GCM, detect.PLAIN),
    ],
)
def test_settings_found(tmp_path: Path, flags: dict[str, bool], content: str, names: str) -> None:
    root = tmp_path / "v"
    key = made(root, **flags)
    found = recover.plan(root, key, recover.Choices())
    assert found.values[detect.CONTENT] == content
    assert found.values[detect.NAMES] == names
    assert found.detection.key_fits is True
    assert detect.looks_like_cipherdir(root) is (names != detect.PLAIN)


def test_longnamemax_found_from_hashed_names(tmp_path: Path) -> None:
    root = tmp_path / "v"
    key = made(root, longname_max=100)
    # Short names stay whole, a 171-character one is hashed: some limit from 62 to 170.
    with pytest.raises(UsageError, match=r"cannot decide longnamemax: .* from 62 to 170 .*--longnamemax N"):
        recover.plan(root, key, recover.Choices())
    assert recover.plan(root, key, recover.Choices(longname_max=100)).values[detect.LONGNAME_MAX] == 100
    with pytest.raises(UsageError, match="contradicts"):
        recover.plan(root, key, recover.Choices(longname_max=255))


def test_wrong_key_and_plain_folder(tmp_path: Path) -> None:
    root = tmp_path / "v"
    made(root)
    with pytest.raises(MasterKeyError, match="fits nothing") as e:
        recover.plan(root, bytes(32), recover.Choices())
    assert "--reverse" not in str(e.value)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "photo.jpg").write_bytes(os.urandom(10_000))
    with pytest.raises(MasterKeyError, match="needs --reverse"):
        recover.plan(plain, bytes(32), recover.Choices())
    assert not detect.looks_like_cipherdir(plain)


def test_hostile_entries_are_not_followed_or_waited_on(tmp_path: Path) -> None:
    root = tmp_path / "v"
    key = made(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s" * 10_000)
    os.mkfifo(root / "AAAAAAAAAAAAAAAAAAAAAA")  # a FIFO with a cipher-shaped name
    os.symlink(outside, root / "BBBBBBBBBBBBBBBBBBBBBB")  # a symlink to a directory elsewhere
    os.symlink(root, root / "CCCCCCCCCCCCCCCCCCCCCC")  # a loop
    found = recover.plan(root, key, recover.Choices())
    assert found.values[detect.CONTENT] == detect.GCM


def test_a_symlinked_config_is_replaced_not_its_target(tmp_path: Path) -> None:
    root = tmp_path / "v"
    key = made(root)
    elsewhere = tmp_path / "kept.conf"
    elsewhere.write_bytes(b"not touched")
    os.symlink(elsewhere, root / CONF_NAME)
    found = recover.plan(root, key, recover.Choices())
    backup = recover.write(found, recover.build_config(found, key, b"new", logn=10))
    assert backup == root / "gocryptfs.conf.bak" and backup.is_symlink()
    assert elsewhere.read_bytes() == b"not touched"
    assert not (root / CONF_NAME).is_symlink()
    assert load_config(root / CONF_NAME).decrypt_master_key(b"new") == key


def test_cli_refuses_a_bad_scrypt_cost_before_reading_the_key(tmp_path: Path) -> None:
    from gocryptfs_harness import run_vaultsh

    root = tmp_path / "v"
    made(root)
    res = run_vaultsh("recover", "--masterkey", "-", "--scryptn", "40", root, input=b"not even read\n")
    assert res.returncode == 13 and "outside 10..28" in res.err
    assert not (root / CONF_NAME).exists()
