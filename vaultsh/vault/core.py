"""The core of an unlocked vault: keys, codecs, cipher-dir descriptors and name translation (§6)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Self

from vaultsh.crypto.aead import AuthenticationError
from vaultsh.vault.config import CONF_NAME, ConfFile
from vaultsh.vault.content import ContentCodec
from vaultsh.vault.dirfds import CipherPath, DirFds
from vaultsh.vault.errors import CorruptionError, FsError, fs_error, short_path
from vaultsh.vault.file import OpenInodes, VaultFile
from vaultsh.vault.keys import FormatOptions, Keys
from vaultsh.vault.names import (
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    ZERO_IV,
    NameCodec,
    NameError_,
    b64_decode,
    b64_encode,
    check_plain_name,
    is_long_name,
    is_name_file,
    read_diriv,
    read_name_file,
    read_regular,
)

# Associated data of a sealed symlink target or xattr value: block 0, no file ID (§7.1, §7.2).
BLOCK0_AD = struct.pack(">Q", 0)
# Names encrypted lately (see encrypt_component): a lookup and the create after it are
# seconds apart at most; a mount keeps the cache for its lifetime, so it stays small.
_NAME_CACHE_SIZE = 128
# Tells whether a stat is of the object a caller means (an inode check); see DirFds.with_object.
SameObject = Callable[[os.stat_result], bool]


def split_path(path: str) -> list[str]:
    """Split a plain vault path into components; '' and '/' are the root, '..' is refused."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FsError(errno.EINVAL, f"{path!r}: '..' is not allowed in vault paths")
    return parts


def _chmod_object(proc: str, st: os.stat_result, mode: int) -> None:
    """chmod of an object named by its O_PATH descriptor (Linux has no mode on a symlink)."""
    if stat_mod.S_ISLNK(st.st_mode):
        raise OSError(errno.EOPNOTSUPP, "cannot change the mode of a symlink")
    os.chmod(proc, mode)


class VaultCore:
    """What every part of a forward vault builds on: its keys and codecs, one descriptor cache
    for all calls on the cipher tree, and the plain-to-cipher translation of names (§6).

    The operations live in subclasses (vault.ops, vault.xattr); vault.Vault joins them.
    """

    def __init__(
        self, cipherdir: Path, master_key: bytes, options: FormatOptions, conf: ConfFile | None
    ) -> None:
        self.cipherdir = cipherdir
        self.conf = conf
        self.options = options
        self.keys = Keys(master_key, options)
        self.names = NameCodec(None if options.plaintext_names else self.keys.eme, options)
        self.content = ContentCodec(self.keys.content)
        self._xattr_codec: NameCodec | None = None
        self._name_cache: dict[tuple[bytes, str], tuple[str, str]] = {}
        # fsync each new gocryptfs.diriv and .name file. A mount turns this off, as gocryptfs
        # does, and leaves durability to the fsync/syncfs calls of its users.
        self.sync_metadata = True
        # File IDs of open files, shared by every handle of one inode: a truncate to 0 through
        # one handle must not let another keep writing with the dropped ID (§5.3).
        self.open_inodes: OpenInodes = {}
        self._xattr_disk_names: dict[bytes, str] = {}
        # Every system call on the cipher tree goes through a cached descriptor of the parent
        # directory: cipher paths may be longer than PATH_MAX, and no symlink is followed.
        self.dirs = DirFds(cipherdir)

    def close(self) -> None:
        """Give back the directory descriptors, so the cipher dir is not kept busy (also done
        when the Vault is garbage-collected). The Vault stays usable and reopens them on demand."""
        self.dirs.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cipher-tree primitives: every call relative to a directory descriptor ----------------

    def lstat_cipher(self, cpath: CipherPath) -> os.stat_result:
        """lstat of a cipher path (raises OSError), however long the path."""
        return self.dirs.path_at(cpath, os.stat, follow_symlinks=False)

    def lstat_in(self, cparent: CipherPath, disk: str) -> os.stat_result:
        """lstat of entry `disk` of a cipher directory (raises OSError)."""
        return self.dirs.at(cparent, disk, os.stat, follow_symlinks=False)

    def lexists_cipher(self, cpath: Path) -> bool:
        try:
            self.lstat_cipher(cpath)
        except FileNotFoundError:
            return False
        return True

    # The calls below change an existing object. Each acts on the object itself, reached
    # through an O_PATH descriptor (DirFds.with_object): never a symlink's target, and with
    # `same`, only the object the caller checked (a mount passes the inode the kernel asked
    # about; anything else is ESTALE, after which the kernel looks the name up again).

    def chmod_cipher(self, cpath: Path, mode: int, same: SameObject | None = None) -> None:
        """chmod a cipher object, never a symlink's target (raises OSError; EOPNOTSUPP on a symlink)."""
        self.dirs.with_object(cpath, lambda proc, st: _chmod_object(proc, st, mode), same)

    def utime_cipher(self, cpath: Path, ns: tuple[int, int], same: SameObject | None = None) -> None:
        """Set the times of a cipher object, never a symlink's target (raises OSError)."""
        self.dirs.with_object(cpath, lambda proc, _st: os.utime(proc, ns=ns), same)

    def lchown_cipher(self, cpath: Path, uid: int, gid: int, same: SameObject | None = None) -> None:
        """chown a cipher object (a symlink itself, never its target; raises OSError)."""
        self.dirs.with_object(cpath, lambda proc, _st: os.chown(proc, uid, gid), same)

    def _check_dir(self, cdir: Path, where: str) -> None:
        """Raise ENOENT/ENOTDIR unless `cdir` is a directory (a symlink to one is not)."""
        try:
            st = self.lstat_cipher(cdir)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise FsError(errno.ENOENT, f"{short_path(where)}: parent directory does not exist") from None
            raise fs_error(e, where) from None
        if not stat_mod.S_ISDIR(st.st_mode):
            raise FsError(errno.ENOTDIR, f"{short_path(where)}: parent is not a directory")

    def _forget_dir(self, cipher_dir: Path) -> None:
        """Drop cached IVs and descriptors at and below a directory that is removed or moved."""
        self.dirs.forget(cipher_dir)

    # -- path resolution --------------------------------------------------------------------

    def dir_iv(self, cipher_dir: CipherPath) -> bytes:
        """The name IV of a cipher directory: its diriv file, or zeros (§6.5, §6.6)."""
        if not self.options.diriv:
            return ZERO_IV
        try:
            # Cached with the directory's descriptor: an IV always matches the directory the
            # names are then created in or listed from.
            return self.dirs.iv(cipher_dir, _read_diriv_at)
        except OSError as e:
            # Reaching the directory failed: a path through a missing or non-directory
            # parent (or a planted symlink) is the caller's ENOENT or ENOTDIR, not a
            # damaged vault; only an existing dir without a readable IV is corrupt.
            where = short_path(cipher_dir)
            if e.errno == errno.ENOENT:
                raise FsError(errno.ENOENT, f"{where}: no such directory") from None
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise FsError(errno.ENOTDIR, f"{where}: not a directory") from None
            raise fs_error(e, cipher_dir) from None

    def encrypt_component(self, cipher_parent: CipherPath, name: str) -> tuple[str, str]:
        """(disk name, full encrypted name) of a plain name in a cipher directory."""
        raw = os.fsencode(name)
        if self.options.plaintext_names:
            check_plain_name(raw)
            if name == CONF_NAME and Path(cipher_parent) == self.cipherdir:
                raise FsError(errno.EPERM, f"{name}: reserved name in a plaintextnames vault")
            return name, name
        iv = self.dir_iv(cipher_parent)
        # A mount encrypts the same name twice in a row (a failed lookup, then create or
        # mkdir). The result depends only on IV and name, so it can be remembered.
        key = (iv, name)
        hit = self._name_cache.get(key)
        if hit is not None:
            return hit
        full = self.names.encrypt(raw, iv)
        out = self.names.disk_name(full), full
        if len(self._name_cache) >= _NAME_CACHE_SIZE:
            self._name_cache.clear()
        self._name_cache[key] = out
        return out

    def cipher_path(self, path: str) -> Path:
        """The cipher path of a plain path (it need not exist)."""
        cur = self.cipherdir
        parts = split_path(path)
        for depth, part in enumerate(parts):
            try:
                cur = cur / self.encrypt_component(cur, part)[0]
            except FsError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise
                # dir_iv can name only the cipher directory; the person asked by plain path
                where = short_path("/" + "/".join(parts[:depth]))
                reason = "no such directory" if e.errno == errno.ENOENT else "not a directory"
                raise FsError(e.errno, f"{where}: {reason}") from None
        return cur

    def decrypt_entry(self, cipher_dir: Path, cipher_name: str) -> str:
        """Plain name of one cipher entry; raises NameError_ if it is not a vault object."""
        if self.options.plaintext_names:
            return cipher_name
        full = cipher_name
        if is_long_name(cipher_name):
            full = self.read_long_name(cipher_dir, cipher_name)
            if self.names.hash_long(full) != cipher_name:
                raise NameError_(f"{cipher_name}: .name sidecar does not match the hash")
        return os.fsdecode(self.names.decrypt(full, self.dir_iv(cipher_dir)))

    def read_long_name(self, cipher_dir: Path, hashed: str) -> str:
        """The full encrypted name in the `.name` sidecar of a hashed entry (§6.7); NameError_
        says why it cannot be had (missing, a link, a FIFO, a bad size)."""
        try:
            return self.dirs.call(cipher_dir, lambda fd: read_name_file(cipher_dir, hashed, dir_fd=fd))
        except OSError as e:
            raise NameError_(f"{short_path(cipher_dir)}: {e.strerror}") from None

    def read_cipher_head(self, cpath: Path, limit: int) -> bytes:
        """Up to `limit` bytes of a regular file of the cipher tree (a diriv, a file's header),
        for showing it: never through a symlink, never waiting on a FIFO (raises OSError)."""
        return self.dirs.path_at(cpath, read_regular, limit)

    def stored_link_target(self, cpath: Path) -> str:
        """A cipher symlink's target as stored on disk: sealed and base64-encoded (§7.1)."""
        target: str = self.dirs.path_at(cpath, os.readlink)
        return target

    def _hidden(self, cipher_dir: Path, name: str) -> bool:
        """Names gocryptfs never shows as vault entries (§6.8)."""
        if cipher_dir == self.cipherdir and name == CONF_NAME:
            return True
        if self.options.plaintext_names:
            return False
        return (name == DIRIV_NAME and self.options.diriv) or is_name_file(name)

    # -- symlink targets (§7.1) ---------------------------------------------------------------

    def decrypt_link(self, stored: str, where: str) -> bytes:
        """The plain target of a symlink from its stored form (CorruptionError if it does not open)."""
        if not stored:
            return b""
        try:
            blob = b64_decode(stored, self.options.raw64)
            return self.content.aead.open(blob, BLOCK0_AD)
        except (ValueError, AuthenticationError):
            raise CorruptionError(f"{short_path(where)}: symlink target does not decrypt (corrupt)") from None

    def encrypt_link_target(self, target: str) -> str:
        """The stored form of a symlink target: sealed and base64-encoded (§7.1)."""
        if self.options.plaintext_names:
            return target
        raw = os.fsencode(target)
        if not raw:
            return ""
        return b64_encode(self.content.aead.seal(raw, BLOCK0_AD), self.options.raw64)

    def decrypt_cipher_path(self, cipher_rel: str) -> str:
        """Plain path of a cipher path relative to the vault root (like the ctlsock's DecryptPath)."""
        cur = self.cipherdir
        out: list[str] = []
        for part in split_path(cipher_rel):
            if part.endswith(LONGNAME_SUFFIX) and is_name_file(part):
                raise FsError(errno.EINVAL, f"{part}: is a long-name sidecar, not an object")
            try:
                out.append(self.decrypt_entry(cur, part))
            except NameError_ as e:
                raise FsError(errno.EBADMSG, str(e)) from None
            cur = cur / part
        return "/".join(out)

    def _file(self, fd: int, where: str, st: os.stat_result | None = None) -> VaultFile:
        """A VaultFile taking over `fd`, sharing file IDs with the other handles of its inode."""
        return VaultFile(self.content, self.open_inodes, fd, where, st)


def _read_diriv_at(cipher_dir: CipherPath, dir_fd: int) -> bytes:
    return read_diriv(Path(cipher_dir), dir_fd=dir_fd)
