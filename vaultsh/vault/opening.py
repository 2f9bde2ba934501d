"""Unlocking a folder: the one place that tells a vault from a reverse-mode folder (open_unlocked)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaultsh.vault.conf_names import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.errors import CipherDirError, UsageError

# The vault and view modules are imported when a folder is opened, not with this module: the
# mount worker loads only the one its mode needs.
if TYPE_CHECKING:
    from vaultsh.vault.keys import FormatOptions
    from vaultsh.vault.reverse import ReverseView
    from vaultsh.vault.vault import Vault


def config_path_of(root: Path, config: Path | None = None) -> Path:
    """The config a folder opens with: `config` if given, else its gocryptfs.conf, or its
    .gocryptfs.reverse.conf when only that exists (a reverse-mode folder, §9.1)."""
    if config is not None:
        return config
    forward = root / CONF_NAME
    reverse = root / REVERSE_CONF_NAME
    if not forward.exists() and reverse.exists():
        return reverse
    return forward


def open_unlocked(
    root: Path,
    *,
    reverse: bool | None = None,
    password: Callable[[], bytes] | None = None,
    master_key: Callable[[], bytes] | None = None,
    options: FormatOptions | None = None,
    config: Path | None = None,
    excludes: Sequence[str] = (),
) -> Vault | ReverseView:
    """The folder `root` unlocked by `master_key` if given, else by `password` (each called
    once the folder is known to open): a vault, or a reverse-mode folder's encrypted view (§9.1).

    `reverse` None lets the folder say which it is (config_path_of); True or False is what a
    mount asked for. A forward open of a reverse config (given, or the folder's only one) is
    refused, since the folder's files are already plain. The config is read before `password`
    is called, so a broken one fails first. With a master key a vault's config may be missing
    (the recovery case, as `gocryptfs -masterkey`): `options` then give its format, else
    gocryptfs's defaults.
    `excludes` are gitignore lines the view hides. VaultError says why a folder does not open.
    """
    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    if reverse:
        conf_path = config or root / REVERSE_CONF_NAME
    else:
        conf_path = config_path_of(root, config)
        if reverse is None:
            reverse = conf_path == root / REVERSE_CONF_NAME
    if not reverse and conf_path.name == REVERSE_CONF_NAME:
        raise UsageError(
            f"{root}: is a reverse-mode plain directory; its files are already plain "
            "(mount it with --reverse to see the encrypted view)"
        )
    from vaultsh.vault.config import load_config

    conf = None
    if master_key is not None:
        key = master_key()
    elif password is None:
        raise UsageError("a password or a master key is needed")
    else:
        conf = load_config(conf_path)
        key = conf.decrypt_master_key(password())
    if reverse:
        from vaultsh.vault.reverse import ReverseView

        custom = None if conf_path == root / REVERSE_CONF_NAME else conf_path
        return ReverseView.open(root, master_key=key, options=options, excludes=excludes, config_path=custom)
    from vaultsh.vault.vault import Vault

    if conf is not None:
        return Vault(root, key, conf.options, conf)
    return Vault.open(root, master_key=key, options=options, config_path=conf_path)
