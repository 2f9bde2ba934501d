"""How `mount` reaches a folder's key: by password or master key, the kind of folder checked first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vault_factory import DEFAULT_PASSWORD, new_vault

from vaultsh.service import folders
from vaultsh.vault.errors import ConfigMissingError, PasswordIncorrectError, UsageError

KEY = bytes(range(32))


def _never() -> bytes:
    raise AssertionError("no secret may be asked for")


def test_a_vaults_key_comes_from_its_password_or_its_master_key(tmp_path: Path) -> None:
    new_vault(tmp_path, master_key=KEY).close()
    assert folders.mount_key(tmp_path, reverse=False, password=lambda: DEFAULT_PASSWORD)() == KEY
    by_key = folders.mount_key(tmp_path, reverse=False, password=_never, master_key=lambda: KEY)
    assert by_key() == KEY
    with pytest.raises(PasswordIncorrectError):
        folders.mount_key(tmp_path, reverse=False, password=lambda: b"wrong")()


def test_a_vault_without_its_config_mounts_by_master_key(tmp_path: Path) -> None:
    new_vault(tmp_path, master_key=KEY).close()
    os.unlink(tmp_path / "gocryptfs.conf")
    assert folders.mount_key(tmp_path, reverse=False, password=_never, master_key=lambda: KEY)() == KEY


def test_a_reverse_folder_key_is_proven_by_building_its_view(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_bytes(b"plain\n")
    new_vault.reverse_folder(tmp_path, master_key=KEY)
    assert folders.mount_key(tmp_path, reverse=True, password=lambda: DEFAULT_PASSWORD)() == KEY
    assert folders.mount_key(tmp_path, reverse=True, password=_never, master_key=lambda: KEY)() == KEY
    with pytest.raises(PasswordIncorrectError):
        folders.mount_key(tmp_path, reverse=True, password=lambda: b"wrong")()


def test_a_reverse_folder_without_its_config_is_refused(tmp_path: Path) -> None:
    """As gocryptfs -reverse: the reverse config is needed even with the master key."""
    new_vault.reverse_folder(tmp_path, master_key=KEY)
    os.unlink(tmp_path / ".gocryptfs.reverse.conf")
    with pytest.raises(ConfigMissingError):
        folders.mount_key(tmp_path, reverse=True, password=_never, master_key=lambda: KEY)()


def test_a_forward_mount_of_a_reverse_folder_is_refused_before_any_secret(tmp_path: Path) -> None:
    new_vault.reverse_folder(tmp_path, master_key=KEY)
    with pytest.raises(UsageError, match="mount it with --reverse"):
        folders.mount_key(tmp_path, reverse=False, password=_never, master_key=_never)
