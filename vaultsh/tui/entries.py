"""The rows of the two panes: what an entry is, how a directory is scanned into entries, their order."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.errors import VaultError
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, is_long_name, is_name_file
from vaultsh.vault.reverse import ReverseEntry, ReverseView
from vaultsh.vault.vault import Vault, dirent_kind

# What an entry on disk is, from the vault's point of view.
ROLE_OBJECT = "object"  # a file, dir or symlink with a decryptable name
ROLE_BAD = "bad"  # on disk but not a valid vault object: conflict copy, corrupt name, stray file
ROLE_DIRIV = "diriv"  # the directory's name IV (§6.5)
ROLE_SIDECAR = "sidecar"  # `<long name>.name`, holding the full encrypted name (§6.7)
ROLE_CONF = "conf"  # gocryptfs.conf in the root (§3.1), or the backup a password change keeps
CONF_BACKUP_NAME = CONF_NAME + ".bak"  # the previous config, kept by `passwd` (§3.1)

FIRST_BATCH = 200  # rows the panes get before any other work: the screen fills at once
BATCH = 2000  # later batches: big enough that messages stay few, small enough to stay smooth


@dataclass(eq=False, slots=True)
class Entry:
    """One name on disk in the current cipher directory, shared by both panes (linked cursors)."""

    cipher_name: str
    kind: str  # "file", "dir", "symlink" or "other"
    role: str
    plain_name: str | None = None  # set for ROLE_OBJECT
    error: str | None = None  # why a ROLE_BAD entry is not a vault object
    cipher_size: int = 0
    plain_size: int = 0
    mtime_ns: int = 0
    view_entry: ReverseEntry | None = None  # reverse mode: the encrypted view's entry shown here

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


def plain_sort_key(entry: Entry) -> tuple[bool, str, str]:
    """Directories first, then by name ignoring case, as file managers list."""
    name = entry.plain_name or entry.cipher_name
    return (not entry.is_dir, name.casefold(), name)


SORT_FIELDS = ("name", "size", "mtime")  # what `s` cycles through


def sort_plain(entries: list[Entry], by: str = "name", reverse: bool = False) -> list[Entry]:
    """The plain pane's order: directories first, then by name, size or modification time
    (ties by name); `reverse` turns the order within each group around."""
    by_name = sorted(entries, key=plain_sort_key)
    if by == "size":
        by_name.sort(key=lambda e: e.plain_size)
    elif by == "mtime":
        by_name.sort(key=lambda e: e.mtime_ns)
    if reverse:
        by_name.reverse()
    return sorted(by_name, key=lambda e: not e.is_dir)  # stable: each group keeps its order


def is_hidden(entry: Entry) -> bool:
    return (entry.plain_name or "").startswith(".")


_ROLE_ORDER = {ROLE_CONF: 0, ROLE_DIRIV: 1, ROLE_BAD: 2, ROLE_OBJECT: 3, ROLE_SIDECAR: 3}


def cipher_sort_key(entry: Entry) -> tuple[int, str]:
    """Config and diriv on top, then problems, then objects with their sidecars (by disk name)."""
    return (_ROLE_ORDER[entry.role], entry.cipher_name)


def listing_digest(cipher_sorted: list[Entry]) -> bytes:
    """What the panes show of a listing (names, kinds, sizes, times), as a short digest: made
    beside the listing, so telling an unchanged reload from a changed one is a compare of bytes."""
    h = hashlib.blake2b(digest_size=16)
    for e in cipher_sorted:
        h.update(
            f"{e.cipher_name}\0{e.kind}\0{e.cipher_size}\0{e.mtime_ns}\n".encode("utf-8", "surrogateescape")
        )
    return h.digest()


def _stat_entry(entry: Entry, dirent: os.DirEntry[str], cdir: Path, vault: Vault) -> None:
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


_T = TypeVar("_T")


def _chunks(items: list[_T], first: int, batch: int, cancelled: Callable[[], bool]) -> Iterator[list[_T]]:
    """A small first chunk (drawn at once), then bigger ones; stops when cancelled."""
    start, size = 0, first
    while start < len(items):
        if cancelled():
            return
        yield items[start : start + size]
        start += size
        size = batch


def scan_cipher_dir(
    vault: Vault,
    cdir: Path,
    *,
    first_batch: int = FIRST_BATCH,
    batch: int = BATCH,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[Entry]]:
    """Every name in a cipher directory, classified and decrypted, in batches (for a thread).

    Unlike `Vault.list_cipher_dir`, which answers "what is in the plain directory", this shows
    everything on disk: the diriv, long-name sidecars and the config are entries of the cipher
    pane, and names that do not decrypt are kept with the reason. Names are decrypted a batch
    at a time with `NameCodec.decrypt_many`, so the first rows are ready long before a huge
    directory is done. Raises VaultError if the directory cannot be read.
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
        yield from _scan_entries(vault, cdir, dirents, first_batch, batch, cancelled)
    finally:
        os.close(dfd)


def _scan_entries(
    vault: Vault,
    cdir: Path,
    dirents: list[os.DirEntry[str]],
    first_batch: int,
    batch: int,
    cancelled: Callable[[], bool],
) -> Iterator[list[Entry]]:
    options = vault.options
    is_root = cdir == vault.cipherdir
    iv: bytes | None = None
    iv_error: str | None = None
    if not options.plaintext_names:
        try:
            iv = vault.dir_iv(cdir)
        except VaultError as e:
            iv_error = str(e)  # every name here is then undecryptable: say why on each
    for chunk in _chunks(dirents, first_batch, batch, cancelled):
        out: list[Entry] = []
        pending: list[tuple[Entry, str]] = []  # (entry, full encrypted name) for decrypt_many
        for d in chunk:
            name = d.name
            entry = Entry(name, dirent_kind(d), ROLE_OBJECT)
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


def scan_view_dir(
    view: ReverseView,
    cipher_dir: str,
    plain_dir: str,
    *,
    first_batch: int = FIRST_BATCH,
    batch: int = BATCH,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[Entry]]:
    """Every entry of one directory of a reverse-mode folder's encrypted view, in batches.

    The names come from `ReverseView.listdir`, so the cipher pane shows exactly what a reverse
    mount shows: encrypted names, the derived gocryptfs.diriv, the virtual `.name` files of
    long names and, in the root, the config as gocryptfs.conf (§9.3). The plain pane shows the
    real objects among them. Raises VaultError if the plain directory cannot be read.
    """
    try:
        found = view.listdir(cipher_dir, plain_dir)
    except OSError as e:
        where = "/" + plain_dir
        raise VaultError(f"{where}: cannot list: {e.strerror or e}") from None
    found.sort(key=lambda e: e.cipher_name)
    for chunk in _chunks(found, first_batch, batch, cancelled):
        yield [_view_row(view, e) for e in chunk]


def _view_row(view: ReverseView, ve: ReverseEntry) -> Entry:
    if ve.data is not None:
        if ve.stat_from is None:
            role = ROLE_CONF
        elif ve.cipher_name == DIRIV_NAME:
            role = ROLE_DIRIV
        else:
            role = ROLE_SIDECAR
        entry = Entry(ve.cipher_name, "file", role, cipher_size=len(ve.data), view_entry=ve)
        with contextlib.suppress(OSError, VaultError):
            entry.mtime_ns = view.stat(ve).mtime_ns
        return entry
    assert ve.plain is not None
    entry = Entry(ve.cipher_name, ve.kind, ROLE_OBJECT, plain_name=ve.plain.rpartition("/")[2], view_entry=ve)
    with contextlib.suppress(OSError):  # gone since the listing: shown with what is known
        st = view.lstat_plain(ve.plain)
        entry.mtime_ns = st.st_mtime_ns
        entry.plain_size = entry.cipher_size = st.st_size
        if ve.kind == "file":
            entry.cipher_size = view.content.plain_to_cipher_size(st.st_size)
        elif ve.kind == "symlink":
            entry.cipher_size = view.cipher_size(ve)
    return entry


def link_targets(entry: Entry, cipher_by_name: dict[str, Entry]) -> list[Entry]:
    """Cipher entries to mark beside a plain entry's own cipher file: its sidecar and the diriv."""
    out: list[Entry] = []
    sidecar = entry.sidecar_name
    if sidecar is not None and sidecar in cipher_by_name:
        out.append(cipher_by_name[sidecar])
    if DIRIV_NAME in cipher_by_name and cipher_by_name[DIRIV_NAME].role == ROLE_DIRIV:
        out.append(cipher_by_name[DIRIV_NAME])
    return out
