"""Every name on the cipher side of a directory, classified (CipherEntry): a vault's or a reverse view's."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vaultsh.vault.conf_names import CONF_NAME
from vaultsh.vault.errors import VaultError
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, is_long_name, is_name_file
from vaultsh.vault.vault import Vault, dirent_kind

# What a name on the cipher side is, from the vault's point of view.
ROLE_OBJECT = "object"  # a file, dir or symlink with a decryptable name
ROLE_BAD = "bad"  # on disk but not a valid vault object: conflict copy, corrupt name, stray file
ROLE_DIRIV = "diriv"  # the directory's name IV (§6.5)
ROLE_SIDECAR = "sidecar"  # `<long name>.name`, holding the full encrypted name (§6.7)
ROLE_CONF = "conf"  # gocryptfs.conf in the root (§3.1), or the backup a password change keeps
CONF_BACKUP_NAME = CONF_NAME + ".bak"  # the previous config, kept by `passwd` (§3.1)

FIRST_BATCH = 200  # entries a reader gets before any other work: a screen fills at once
BATCH = 2000  # later batches: big enough that messages stay few, small enough to stay smooth


@dataclass(eq=False, slots=True)
class CipherEntry:
    """One name on the cipher side of a directory, with the plain object it stands for."""

    cipher_name: str
    kind: str  # "file", "dir", "symlink" or "other"
    role: str
    plain_name: str | None = None  # set for ROLE_OBJECT
    error: str | None = None  # why a ROLE_BAD entry is not a vault object
    cipher_size: int = 0
    plain_size: int = 0
    mtime_ns: int = 0

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def long_name(self) -> bool:
        return self.role == ROLE_OBJECT and is_long_name(self.cipher_name)

    @property
    def sidecar_name(self) -> str | None:
        """The `.name` file of a hashed long name (§6.7)."""
        return self.cipher_name + LONGNAME_SUFFIX if self.long_name else None

    @property
    def owner_name(self) -> str | None:
        """For a `.name` sidecar: the cipher name of the object it names."""
        if self.role != ROLE_SIDECAR:
            return None
        return self.cipher_name[: -len(LONGNAME_SUFFIX)]


# Where a scan stops early: asked between batches.
Cancelled = Callable[[], bool]

_T = TypeVar("_T")


def chunks(items: list[_T], first: int, batch: int, cancelled: Cancelled) -> Iterator[list[_T]]:
    """A small first chunk (drawn at once), then bigger ones; stops when cancelled."""
    start, size = 0, first
    while start < len(items):
        if cancelled():
            return
        yield items[start : start + size]
        start += size
        size = batch


# -- a vault: the names stored in a cipher directory -------------------------------------------


def scan_vault_dir(
    vault: Vault,
    cdir: Path,
    *,
    first_batch: int = FIRST_BATCH,
    batch: int = BATCH,
    cancelled: Cancelled = lambda: False,
) -> Iterator[list[CipherEntry]]:
    """Every name in a cipher directory, classified and decrypted, in batches (for a thread).

    Unlike `Vault.list_cipher_dir`, which answers "what is in the plain directory", this shows
    everything on disk: the diriv, long-name sidecars and the config are entries, and names
    that do not decrypt are kept with the reason. Names are decrypted a batch at a time with
    `NameCodec.decrypt_many`, so the first entries are ready long before a huge directory is
    done. Raises VaultError if the directory cannot be read.
    """
    # Through a descriptor opened without following links, kept open while the entries are
    # looked at: their lstat is relative to it, so a directory swapped for a symlink is never
    # listed through.
    try:
        dfd = vault.dirs.open_dir(cdir)
    except OSError as e:
        raise VaultError(f"{cdir}: cannot list: {e.strerror or e}") from None
    try:
        try:
            with os.scandir(dfd) as it:
                dirents = sorted(it, key=lambda d: d.name)
        except OSError as e:
            raise VaultError(f"{cdir}: cannot list: {e.strerror or e}") from None
        yield from _vault_entries(vault, cdir, dirents, first_batch, batch, cancelled)
    finally:
        os.close(dfd)


def _stat_entry(entry: CipherEntry, dirent: os.DirEntry[str], cdir: Path, vault: Vault) -> None:
    try:
        st = dirent.stat(follow_symlinks=False)
    except OSError:
        return
    entry.cipher_size = st.st_size
    entry.mtime_ns = st.st_mtime_ns
    if entry.kind == "file":
        entry.plain_size = vault.content.cipher_to_plain_size(st.st_size)
    elif entry.kind == "symlink":  # its size is the target's length, as lstat on a mount says
        with contextlib.suppress(VaultError, OSError):
            entry.plain_size = len(os.fsencode(vault.readlink_cipher(cdir / dirent.name, dirent.name)))


def _vault_entries(
    vault: Vault,
    cdir: Path,
    dirents: list[os.DirEntry[str]],
    first_batch: int,
    batch: int,
    cancelled: Cancelled,
) -> Iterator[list[CipherEntry]]:
    options = vault.options
    is_root = cdir == vault.cipherdir
    iv: bytes | None = None
    iv_error: str | None = None
    if not options.plaintext_names:
        try:
            iv = vault.dir_iv(cdir)
        except VaultError as e:
            iv_error = str(e)  # every name here is then undecryptable: say why on each
    for chunk in chunks(dirents, first_batch, batch, cancelled):
        out: list[CipherEntry] = []
        pending: list[tuple[CipherEntry, str]] = []  # (entry, full encrypted name) for decrypt_many
        for d in chunk:
            name = d.name
            entry = CipherEntry(name, dirent_kind(d), ROLE_OBJECT)
            _stat_entry(entry, d, cdir, vault)
            out.append(entry)
            if is_root and name in (CONF_NAME, CONF_BACKUP_NAME):
                entry.role = ROLE_CONF
            elif options.plaintext_names:
                entry.plain_name = name
            elif name == DIRIV_NAME and options.diriv:
                entry.role = ROLE_DIRIV
            elif is_name_file(name):
                entry.role = ROLE_SIDECAR
            elif iv is None:
                entry.role, entry.error = ROLE_BAD, iv_error
            elif is_long_name(name):
                try:
                    entry.plain_name = vault.decrypt_entry(cdir, name)
                except VaultError as e:
                    entry.role, entry.error = ROLE_BAD, str(e)
            else:
                pending.append((entry, name))
        if pending and iv is not None:
            results = vault.names.decrypt_many([n for _, n in pending], iv)
            for (entry, _), res in zip(pending, results, strict=True):
                if isinstance(res, bytes):
                    entry.plain_name = res.decode("utf-8", "surrogateescape")
                else:
                    entry.role, entry.error = ROLE_BAD, str(res)
        yield out
