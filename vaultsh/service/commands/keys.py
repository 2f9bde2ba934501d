"""Password and key commands: info, passwd, masterkey, recover."""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

from vaultsh.service.commands.session import Session
from vaultsh.vault.config import REVERSE_CONF_NAME, ConfFile, load_config
from vaultsh.vault.errors import (
    InitError,
    MasterKeyError,
    ReadPasswordError,
    UsageError,
    WriteConfError,
)
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.vault import Vault


def config_info(conf_path: Path) -> list[str]:
    """The lines of `gocryptfs -info` for a config file (no password needed, §3.8)."""
    return load_config(conf_path).info_lines()


def reveal_master_key(conf: ConfFile, password: bytes) -> str:
    """The master key in gocryptfs's grouped hex form, after checking the password (§3.7)."""
    return format_master_key(conf.decrypt_master_key(password))


def check_key_fits(conf: ConfFile, key: bytes, root: Path) -> None:
    """Refuse a master key that is shown not to be this vault's (see Vault.key_fits)."""
    if Vault(root, key, conf.options, conf).key_fits() is False:
        raise MasterKeyError("the master key does not decrypt this vault's names or files")


def change_password(
    conf_path: Path,
    cipherdir: Path,
    new_password: Callable[[], bytes],
    *,
    old_password: Callable[[], bytes] | None = None,
    master_key: Callable[[], bytes] | None = None,
    logn: int | None = None,
) -> tuple[Path, ConfFile]:
    """Re-wrap the master key under a new password; returns (backup path, new config) (§3.6).

    The secrets are asked for in order, each only once the previous step succeeded: the config
    is read, then the old password (or the master key) checked, then the new password asked.
    The previous config is kept as `<config>.bak`: replaced when unlocked by password; with a
    master key, gocryptfs's stricter rule applies and an existing .bak is never overwritten.
    """
    conf = load_config(conf_path)
    if conf.fido2 is not None:
        raise UsageError(f"{conf_path}: passwd is not supported on FIDO2 vaults")
    if master_key is not None:
        key = master_key()
        # Prove the key belongs to this vault before re-wrapping it: a wrong key would
        # otherwise replace a working config with one that opens nothing.
        if conf_path.name != REVERSE_CONF_NAME:  # a reverse dir holds no ciphertext to try
            check_key_fits(conf, key, cipherdir)
    elif old_password is not None:
        key = conf.decrypt_master_key(old_password())
    else:
        raise UsageError("passwd needs the old password or the master key")
    new_conf = conf.with_password(key, new_password(), logn)
    bak = conf_path.with_name(conf_path.name + ".bak")
    if master_key is not None:
        try:
            os.link(conf_path, bak)
        except FileExistsError:
            raise InitError(f"{bak}: already exists; move it away first") from None
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    else:
        tmp_bak = bak.with_name(bak.name + ".tmp")
        try:
            tmp_bak.unlink(missing_ok=True)
            os.link(conf_path, tmp_bak)
            os.replace(tmp_bak, bak)
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    new_conf.write(conf_path)
    return bak, load_config(conf_path)


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_info(session: Session, a: Namespace) -> int:
    io = session.io
    io.write(f"{'Vault:':<19}{session.cipherdir}")
    for line in session.tree.info_lines():
        io.write(line)
    conf = session.conf
    if conf is None:
        io.write(f"{'Config:':<19}none (unlocked with the master key)")
        io.write(f"{'contentEncryption:':<19}{session.options.content_encryption}")
        return 0
    io.write(f"{'Config:':<19}{session.conf_path}")
    for line in conf.info_lines():
        io.write(line)
    return 0


def run_passwd(session: Session, a: Namespace) -> int:
    io = session.io
    if session.conf is None:
        # Unlocked with the master key and no config: passwd means writing one.
        from vaultsh.service import recover

        return recover.in_session(session, recover.Choices())

    def ask_new() -> bytes:
        if a.new_passfile:
            from vaultsh.service.passwords import read_passfile

            return read_passfile(os.path.expanduser(a.new_passfile))
        new = io.ask_secret("New password: ")
        if io.ask_secret("Repeat: ") != new:
            raise ReadPasswordError("Passwords do not match")
        return new

    key = session.master_key
    bak, conf = change_password(
        session.conf_path,
        session.cipherdir,
        ask_new,
        old_password=None if session.by_master_key else lambda: io.ask_secret("Old password: "),
        master_key=(lambda: key) if session.by_master_key else None,
        logn=a.scryptn,
    )
    session.conf = conf
    io.write(f"Password changed. The previous config is kept as {bak}.")
    return 0


def run_recover(session: Session, a: Namespace) -> int:
    from vaultsh.service import recover

    return recover.in_session(session, recover.Choices.from_args(a), dry_run=a.dry_run)


def run_masterkey(session: Session, a: Namespace) -> int:
    conf = session.conf
    if conf is None:
        raise UsageError("this vault was unlocked with its master key and has no config to check")
    # Asked again although the vault is open: the key is the one thing that must not leak
    # from a terminal left unattended.
    key = reveal_master_key(conf, session.io.ask_secret("Password: "))
    show_secret = session.hooks.get("masterkey")
    if show_secret is not None:
        show_secret(key)  # a front-end that keeps it out of its output (the TUI's dialog)
    else:
        session.io.write(key)
    return 0
