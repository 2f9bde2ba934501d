"""Opening a folder as a command session: a vault, a reverse-mode folder, or a vault without its config."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vaultsh.vault.conf_names import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.errors import UsageError
from vaultsh.vault.opening import config_path_of as config_path_of  # re-exported for the CLI

if TYPE_CHECKING:
    from vaultsh.service.commands.session import Session, SessionIO
    from vaultsh.vault.config import ConfFile
    from vaultsh.vault.keys import FormatOptions


# What a folder holds, for a front end choosing how to open it.
FolderKind = Literal["vault", "reverse", "empty", "configless"]


def folder_kind(root: Path) -> FolderKind:
    """ "reverse" for a reverse-mode folder, "empty" for a missing or empty directory (a new
    vault goes there), "configless" for cipher files without their config (the recovery
    case), else "vault" (which may still fail to open: opening says why). OSError if the
    directory cannot be read."""
    from vaultsh.vault.detect import looks_like_cipherdir

    conf = config_path_of(root)
    if conf.name == REVERSE_CONF_NAME:
        return "reverse"
    if conf.exists():
        return "vault"
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return "empty"
    # A dangling gocryptfs.conf symlink is a broken config, not a lost one.
    if not conf.is_symlink() and root.is_dir() and looks_like_cipherdir(root):
        return "configless"
    return "vault"


def read_config(root: Path, config: Path | None = None) -> ConfFile:
    """The config `root` opens with, read and checked: a front end asking for the password
    in a dialog calls this first, so that a broken config fails before the dialog."""
    from vaultsh.vault.config import load_config  # lazily: the mount path starts without cryptography

    return load_config(config_path_of(root, config))


def config_backup(root: Path) -> Path | None:
    """The previous config `passwd` kept beside a vault's present one (§3.1), if there is one."""
    conf = root / CONF_NAME
    backup = conf.with_name(CONF_NAME + ".bak")
    return backup if os.path.lexists(conf) and backup.is_file() else None


def mount_key(
    root: Path,
    *,
    reverse: bool,
    password: Callable[[], bytes],
    master_key: Callable[[], bytes] | None = None,
    options: FormatOptions | None = None,
    config: Path | None = None,
) -> Callable[[], bytes]:
    """How `mount` gets the master key of `root`: by the given master key, else by the password.

    The key is read when the returned function is called, once the mount's worker is starting,
    so the prompt and scrypt overlap its start-up. A forward mount of a reverse-mode folder is
    refused at once. A reverse-mode folder's key is proven by building its view (§9.1); a
    vault's config may be missing with a master key (as `gocryptfs -masterkey`).
    """
    if reverse:
        conf_path = config or root / REVERSE_CONF_NAME
    else:
        conf_path = config_path_of(root, config)
        if conf_path.name == REVERSE_CONF_NAME:
            raise UsageError(f"{root}: is a reverse-mode plain directory; mount it with --reverse")

    def read_key() -> bytes:
        from vaultsh.vault.config import load_config, unlock  # lazily, as read_config

        if master_key is not None:
            key, _opts, _conf = unlock(
                conf_path, password=None, master_key=master_key(), options=options, missing_ok=not reverse
            )
        else:
            key = load_config(conf_path).decrypt_master_key(password())
        if reverse:
            conf = load_config(conf_path) if conf_path.exists() else None
            view_options = options or (conf.options if conf else None)
            if view_options is not None:
                from vaultsh.vault.reverse import ReverseView

                ReverseView(root, key, view_options, conf_path)
        return key

    return read_key


def open_folder(
    root: Path,
    io: SessionIO,
    *,
    password: Callable[[], bytes] | None = None,
    master_key: Callable[[], bytes] | None = None,
    options: FormatOptions | None = None,
    config: Path | None = None,
) -> Session:
    """A session on the folder `root`, unlocked by `master_key` if given, else `password`.

    A folder with only a .gocryptfs.reverse.conf opens as its encrypted view (read-only); any
    other as a vault. With a master key a vault's config may be missing (the recovery case,
    as `gocryptfs -masterkey`): `options` then give its format, else gocryptfs's defaults.
    The config is read before a secret is asked for, so a broken one fails first. VaultError
    says why a folder does not open.
    """
    # Imported here: `vaultsh mount` finds its config through this module without loading
    # the commands or the ciphers.
    from vaultsh.service.commands.session import Session
    from vaultsh.vault.opening import open_unlocked
    from vaultsh.vault.vault import Vault

    folder = open_unlocked(
        root,
        password=lambda: _ask(password),
        master_key=master_key,
        options=options,
        config=config,
    )
    if not isinstance(folder, Vault):
        # A reverse-mode folder's passwd asks its old password even after a master key.
        return Session(folder, root, io)
    return Session(folder, root, io, config_path=config, by_master_key=master_key is not None)


def _ask(password: Callable[[], bytes] | None) -> bytes:
    if password is None:
        raise UsageError("a password or a master key is needed")
    return password()
