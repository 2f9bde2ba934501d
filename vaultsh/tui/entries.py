"""The rows of the two panes (the shown directory's cipher-side entries): order, digests, links."""

from __future__ import annotations

import hashlib

from vaultsh.vault.cipher_entries import (
    CONF_BACKUP_NAME,
    ROLE_BAD,
    ROLE_CONF,
    ROLE_DIRIV,
    ROLE_OBJECT,
    ROLE_SIDECAR,
    CipherEntry,
)
from vaultsh.vault.names import DIRIV_NAME

__all__ = [
    "CONF_BACKUP_NAME",
    "ROLE_BAD",
    "ROLE_CONF",
    "ROLE_DIRIV",
    "ROLE_OBJECT",
    "ROLE_SIDECAR",
    "SORT_FIELDS",
    "Entry",
    "cipher_sort_key",
    "is_hidden",
    "link_targets",
    "listing_digest",
    "plain_sort_key",
    "sort_plain",
]

# A row of both panes is one name of the shown directory's cipher side (linked cursors): the
# tree says what each is (Tree.cipher_entries).
Entry = CipherEntry


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


def link_targets(entry: Entry, cipher_by_name: dict[str, Entry]) -> list[Entry]:
    """Cipher entries to mark beside a plain entry's own cipher file: its sidecar and the diriv."""
    out: list[Entry] = []
    sidecar = entry.sidecar_name
    if sidecar is not None and sidecar in cipher_by_name:
        out.append(cipher_by_name[sidecar])
    if DIRIV_NAME in cipher_by_name and cipher_by_name[DIRIV_NAME].role == ROLE_DIRIV:
        out.append(cipher_by_name[DIRIV_NAME])
    return out
