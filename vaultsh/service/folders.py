"""Opening a folder as a command session: a vault, a reverse-mode folder, or a vault without its config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vaultsh.vault.conf_names import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.errors import CipherDirError, UsageError

if TYPE_CHECKING:
    from vaultsh.service.commands.session import Session, SessionIO
    from vaultsh.vault.keys import FormatOptions


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
    from vaultsh.vault.config import load_config
    from vaultsh.vault.vault import Vault

    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    conf_path = config_path_of(root, config)
    if conf_path.name == REVERSE_CONF_NAME:
        if conf_path != root / REVERSE_CONF_NAME:
            raise UsageError(
                f"{root}: is a reverse-mode plain directory; its files are already plain "
                "(mount it with --reverse to see the encrypted view)"
            )
        if master_key is not None:
            return Session.open_reverse(root, io, master_key=master_key())
        load_config(conf_path)
        return Session.open_reverse(root, io, password=_ask(password))
    if master_key is not None:
        vault = Vault.open(root, master_key=master_key(), options=options, config_path=conf_path)
    else:
        conf = load_config(conf_path)
        vault = Vault(root, conf.decrypt_master_key(_ask(password)), conf.options, conf)
    return Session(vault, root, io, config_path=config, by_master_key=master_key is not None)


def _ask(password: Callable[[], bytes] | None) -> bytes:
    if password is None:
        raise UsageError("a password or a master key is needed")
    return password()
