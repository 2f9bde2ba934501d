"""One read interface over a vault and a reverse-mode view (Tree), and its vault side (VaultTree)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from vaultsh.vault.cipher_entries import BATCH, FIRST_BATCH, Cancelled, CipherEntry, scan_vault_dir
from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import FsError, fs_error
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.vault import PlainStat, Vault
from vaultsh.vault.xray import XRay, vault_xray

# What `export` copies out of a tree: a vault's plain files, or a reverse-mode folder's
# encrypted view (a backup that opens as a vault, §9.4).
ExportKind = Literal["plain", "cipher"]


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One object of a tree, known by both of its paths.

    `plain` is the path of the plain object ("" the root) and `cipher_path` its path on the
    cipher side, both relative and '/'-separated. An entry that cannot be decrypted (a
    vault's foreign or damaged name) has its cipher name as its last plain component and
    `error` saying why.
    """

    plain: str
    cipher_path: str
    kind: str  # "file", "dir", "symlink" or "other"
    error: str | None = None

    @property
    def name(self) -> str:
        return self.plain.rpartition("/")[2]

    @property
    def cipher_name(self) -> str:
        return self.cipher_path.rpartition("/")[2]


ROOT = TreeNode("", "", "dir")


class Tree(Protocol):
    """What the read-only commands need of an unlocked folder, forward or reverse.

    Paths are plain and relative ("" the root); errors are VaultErrors (FsError with an
    errno for a missing or wrong-kind object). Writing exists only where `writable` says so:
    a reverse-mode view is changed through its plain files, never through the tree.
    """

    writable: ClassVar[bool]
    exports: ClassVar[ExportKind]
    # Whether the cipher side is stored files (a vault's, which fsck, conflicts and recovery
    # examine) rather than computed on each read (a reverse-mode view's).
    cipher_files: ClassVar[bool]
    # Where the cipher side's bytes are, for sentences such as "4,152 on disk".
    cipher_place: ClassVar[str]
    # What a status line says about the kind of folder ("" for an ordinary vault).
    status_note: ClassVar[str]

    @property
    def root(self) -> Path:
        """The folder opened: a vault's cipher dir, a reverse-mode folder's plain dir."""
        ...

    @property
    def options(self) -> FormatOptions: ...

    def node(self, plain: str) -> TreeNode:
        """The object at an existing plain path."""
        ...

    def children(self, directory: TreeNode, *, include_bad: bool = False) -> list[TreeNode]:
        """The objects in a directory, unsorted; undecryptable entries only with `include_bad`."""
        ...

    def plain_stat(self, node: TreeNode) -> PlainStat:
        """lstat of the plain object (plain size; `cipher_size` the size on the cipher side)."""
        ...

    def plain_link(self, node: TreeNode) -> str:
        """A symlink's plain target."""
        ...

    def plain_chunks(
        self, node: TreeNode, on_bad: Callable[[int, str], None] | None = None
    ) -> Iterator[bytes | memoryview]:
        """A regular file's plain content in chunks; with `on_bad`, a damaged block comes out
        as zeros and is reported (block number, why) instead of failing the read."""
        ...

    def plain_head(self, node: TreeNode, limit: int) -> bytes:
        """Up to `limit` first bytes of a regular file's plain content (for a preview)."""
        ...

    def encrypt_path(self, plain: str) -> str:
        """The cipher path of a plain path, relative to the cipher side's root."""
        ...

    def decrypt_path(self, cipher_path: str) -> str:
        """The plain path of a cipher path relative to the cipher side's root."""
        ...

    def info_lines(self) -> list[str]:
        """Lines `info` shows about the kind of folder, before its config."""
        ...

    def cipher_entries(
        self,
        directory: TreeNode,
        *,
        first_batch: int = FIRST_BATCH,
        batch: int = BATCH,
        cancelled: Cancelled = lambda: False,
    ) -> Iterator[list[CipherEntry]]:
        """Every name on the cipher side of a directory, classified, in batches sorted by
        cipher name: the objects and the files that are not objects (diriv, long-name
        sidecars, the config, names that do not decrypt). VaultError if it cannot be read."""
        ...

    def watch_dir(self, directory: TreeNode) -> Path:
        """The local directory whose changes change `directory`'s listing."""
        ...

    def xray(self, directory: TreeNode, entry: CipherEntry) -> XRay:
        """What the cipher-side entry `entry` of `directory` is and how it is built."""
        ...

    def cipher_chunks(self, directory: TreeNode, cipher_name: str) -> Iterator[bytes]:
        """A regular file of the cipher side in chunks, as stored or as a mount serves it."""
        ...


class VaultTree:
    """A forward vault as a Tree: the plain view decrypted from its cipher dir."""

    writable: ClassVar[bool] = True
    exports: ClassVar[ExportKind] = "plain"
    cipher_files: ClassVar[bool] = True
    cipher_place: ClassVar[str] = "on disk"
    status_note: ClassVar[str] = ""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.root = vault.cipherdir
        self.options = vault.options

    def _cpath(self, node: TreeNode) -> Path:
        return self.root / node.cipher_path if node.cipher_path else self.root

    def node(self, plain: str) -> TreeNode:
        cpath = self.vault.cipher_path(plain)
        st = self.vault.stat_cipher(cpath, "/" + plain)
        return TreeNode(plain, cpath.relative_to(self.root).as_posix() if plain else "", st.kind)

    def children(self, directory: TreeNode, *, include_bad: bool = False) -> list[TreeNode]:
        where = "/" + directory.plain
        listing = self.vault.list_cipher_dir(self._cpath(directory), include_bad=include_bad, where=where)
        prefix = directory.plain + "/" if directory.plain else ""
        cprefix = directory.cipher_path + "/" if directory.cipher_path else ""
        return [TreeNode(prefix + e.name, cprefix + e.cipher_name, e.kind, e.error) for e in listing]

    def plain_stat(self, node: TreeNode) -> PlainStat:
        return self.vault.stat_cipher(self._cpath(node), "/" + node.plain)

    def plain_link(self, node: TreeNode) -> str:
        return self.vault.readlink_cipher(self._cpath(node), node.name)

    def plain_chunks(
        self, node: TreeNode, on_bad: Callable[[int, str], None] | None = None
    ) -> Iterator[bytes | memoryview]:
        with self.vault.open_cipher_file(self._cpath(node), "/" + node.plain) as f:
            yield from (f.iter_chunks() if on_bad is None else f.iter_salvaged(on_bad))

    def plain_head(self, node: TreeNode, limit: int) -> bytes:
        with self.vault.open_cipher_file(self._cpath(node), "/" + node.plain) as f:
            return f.read(0, limit)

    def encrypt_path(self, plain: str) -> str:
        return self.vault.cipher_path(plain).relative_to(self.root).as_posix()

    def decrypt_path(self, cipher_path: str) -> str:
        return self.vault.decrypt_cipher_path(cipher_path)

    def info_lines(self) -> list[str]:
        return []

    def cipher_entries(
        self,
        directory: TreeNode,
        *,
        first_batch: int = FIRST_BATCH,
        batch: int = BATCH,
        cancelled: Cancelled = lambda: False,
    ) -> Iterator[list[CipherEntry]]:
        return scan_vault_dir(
            self.vault, self._cpath(directory), first_batch=first_batch, batch=batch, cancelled=cancelled
        )

    def watch_dir(self, directory: TreeNode) -> Path:
        return self._cpath(directory)

    def xray(self, directory: TreeNode, entry: CipherEntry) -> XRay:
        return vault_xray(self.vault, self._cpath(directory), entry)

    def cipher_chunks(self, directory: TreeNode, cipher_name: str) -> Iterator[bytes]:
        cpath = self._cpath(directory) / cipher_name
        return regular_file_chunks(lambda: self.vault.dirs.path_at(cpath, os.open, READ_UNTRUSTED), cpath)


# Opening a file of a tree that others write into (a cipher dir shared with a sync tool, a
# plain dir): a planted symlink is not followed, a FIFO not waited on.
READ_UNTRUSTED = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def regular_file_chunks(open_fd: Callable[[], int], where: str | os.PathLike[str]) -> Iterator[bytes]:
    """The bytes of the file `open_fd()` opens, 1 MiB at a time, closed after; FsError naming
    `where` if it does not open or is not a regular file."""
    try:
        fd = open_fd()
    except OSError as e:
        raise fs_error(e, where) from None
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise FsError(errno.EINVAL, f"{where}: not a regular file")
        while chunk := os.read(fd, 256 * BLOCK_SIZE):
            yield chunk
    finally:
        os.close(fd)
