"""open_unlocked: one opener for a vault, a reverse-mode folder and a vault without its config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from vault_factory import DEFAULT_PASSWORD, NewVault

from vaultsh.vault.conf_names import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.errors import (
    CipherDirError,
    ConfigMissingError,
    ExitCode,
    PasswordIncorrectError,
    UsageError,
    VaultError,
)
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.opening import open_unlocked
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault


def password_never_asked() -> bytes:
    raise AssertionError("the password was asked for although the folder cannot open")


def test_a_vault_opens_by_password_and_by_master_key(tmp_path: Path, new_vault: NewVault) -> None:
    root = tmp_path / "cipher"
    with new_vault(root) as made:
        made.write_file("notes.txt", b"hello")
        key = made.keys.master_key
    by_password = open_unlocked(root, password=lambda: DEFAULT_PASSWORD)
    assert isinstance(by_password, Vault)
    assert by_password.read_file("notes.txt") == b"hello"
    assert by_password.conf is not None and by_password.conf.path == root / CONF_NAME
    by_key = open_unlocked(root, reverse=False, master_key=lambda: key)
    assert isinstance(by_key, Vault) and by_key.read_file("notes.txt") == b"hello"


def test_a_reverse_folder_opens_as_its_encrypted_view(tmp_path: Path, new_vault: NewVault) -> None:
    root = tmp_path / "plain"
    made = new_vault.reverse_folder(root)
    (root / "notes.txt").write_bytes(b"hello")
    opened = open_unlocked(root, password=lambda: DEFAULT_PASSWORD)
    assert isinstance(opened, ReverseView)
    # The same key as the folder was made with: the same encrypted names.
    assert opened.encrypt_name("", "notes.txt") == made.encrypt_name("", "notes.txt")
    # The view keeps its key and config as a vault does (passwd, masterkey and info use them).
    assert opened.conf is not None and opened.conf.path == root / REVERSE_CONF_NAME
    assert opened.keys.master_key == made.keys.master_key
    asked_for_reverse = open_unlocked(root, reverse=True, master_key=lambda: made.keys.master_key)
    assert isinstance(asked_for_reverse, ReverseView)


def test_a_wrong_password_is_refused_with_gocryptfs_exit_code(tmp_path: Path, new_vault: NewVault) -> None:
    new_vault(tmp_path / "cipher").close()
    new_vault.reverse_folder(tmp_path / "plain")
    for root in (tmp_path / "cipher", tmp_path / "plain"):
        with pytest.raises(PasswordIncorrectError) as caught:
            open_unlocked(root, password=lambda: b"not the password")
        assert caught.value.exit_code == ExitCode.PASSWORD_INCORRECT


def test_a_missing_config_fails_before_the_password_unless_a_master_key_recovers(
    tmp_path: Path, new_vault: NewVault
) -> None:
    root = tmp_path / "cipher"
    with new_vault(root, xchacha=True) as made:
        made.write_file("notes.txt", b"hello")
        key = made.keys.master_key
    (root / CONF_NAME).unlink()
    with pytest.raises(ConfigMissingError):
        open_unlocked(root, password=password_never_asked)
    with pytest.raises(UsageError, match="a password or a master key is needed"):
        open_unlocked(root)
    # The recovery case: the master key and the format given (as gocryptfs -masterkey -xchacha).
    recovered = open_unlocked(root, master_key=lambda: key, options=FormatOptions(xchacha=True))
    assert isinstance(recovered, Vault) and recovered.conf is None
    assert recovered.read_file("notes.txt") == b"hello"


def test_a_reverse_folder_without_its_config_does_not_open_by_master_key(
    tmp_path: Path, new_vault: NewVault
) -> None:
    root = tmp_path / "plain"
    key = new_vault.reverse_folder(root).keys.master_key
    (root / REVERSE_CONF_NAME).unlink()
    with pytest.raises(VaultError):
        open_unlocked(root, reverse=True, master_key=lambda: key)


def test_a_reverse_config_is_refused_by_a_forward_open(tmp_path: Path, new_vault: NewVault) -> None:
    root = tmp_path / "plain"
    new_vault.reverse_folder(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(root / REVERSE_CONF_NAME, elsewhere / REVERSE_CONF_NAME)
    cases = [
        {"reverse": False},  # a forward mount of a reverse-mode folder
        {"reverse": False, "config": root / REVERSE_CONF_NAME},
        {"config": elsewhere / REVERSE_CONF_NAME},  # a reverse config elsewhere: not this folder's
    ]
    for case in cases:
        with pytest.raises(UsageError, match="is a reverse-mode plain directory") as caught:
            open_unlocked(root, password=password_never_asked, **case)  # type: ignore[arg-type]
        assert caught.value.exit_code == ExitCode.USAGE
    assert sorted(os.listdir(root)) == [REVERSE_CONF_NAME]  # nothing written


def test_a_missing_folder_is_a_cipher_dir_error(tmp_path: Path) -> None:
    with pytest.raises(CipherDirError, match="no such directory") as caught:
        open_unlocked(tmp_path / "missing", password=password_never_asked)
    assert caught.value.exit_code == ExitCode.CIPHER_DIR
