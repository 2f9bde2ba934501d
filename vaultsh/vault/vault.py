"""The Vault API: plain-path operations over a gocryptfs cipher directory (spec §5–§8)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat as stat_mod
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from vaultsh.crypto.aead import AuthenticationError
from vaultsh.vault.config import (
    CONF_NAME,
    DEFAULT_SCRYPT_LOGN,
    REVERSE_CONF_NAME,
    ConfFile,
    new_config,
    unlock,
)
from vaultsh.vault.content import (
    BLOCK_SIZE,
    HEADER_LEN,
    ContentCodec,
    block_ad,
    make_header,
    new_file_id,
    parse_header,
)
from vaultsh.vault.dirfds import RENAME_EXCHANGE, DirFds, renameat2
from vaultsh.vault.errors import (
    CipherDirError,
    CorruptionError,
    FsError,
    InitError,
    VaultError,
    fs_error,
    short_path,
)
from vaultsh.vault.keys import MASTER_KEY_LEN, FormatOptions, Keys
from vaultsh.vault.names import (
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    XATTR_PASSTHROUGH,
    XATTR_PREFIX,
    ZERO_IV,
    NameCodec,
    NameError_,
    b64_decode,
    b64_encode,
    check_plain_name,
    is_long_name,
    is_name_file,
    looks_encrypted,
    read_diriv,
    read_name_file,
    read_regular,
    write_diriv,
    write_name_file,
)

CHUNK_BLOCKS = 256  # 1 MiB of plaintext per I/O call in streaming reads and writes
_KEEP_IO_BUF = 2 * CHUNK_BLOCKS * (BLOCK_SIZE + 64)  # larger one-off reads and writes get their own
_SYMLINK_AD = struct.pack(">Q", 0)  # symlink targets: block 0, no file ID (§7.1)
_RMDIR_PREFIX = DIRIV_NAME + ".rmdir."
_T = TypeVar("_T")
_NAME_CACHE_SIZE = 1024
# Tells whether a stat is of the object a caller means (an inode check); see DirFds.with_object.
SameObject = Callable[[os.stat_result], bool]
Owner = tuple[int, int]  # (uid, gid) to give a new object; -1 keeps one, as in chown(2)


class DirEntry(NamedTuple):
    """One entry of a cipher directory as the vault sees it.

    `name` is the plain name (for entries that cannot be decrypted: the cipher name), `error`
    says why an entry is not a valid vault object, and `cipher_name` is the name on disk.
    A NamedTuple rather than a frozen dataclass: listings build them by the hundred thousand.
    """

    name: str
    cipher_name: str
    kind: str  # "file", "dir", "symlink" or "other"
    error: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def long_name(self) -> bool:
        return is_long_name(self.cipher_name)


class RenameResult(NamedTuple):
    """What a rename did: cipher paths, the source's stat, and the stat of what it replaced."""

    src: Path
    dst: Path
    src_stat: os.stat_result
    replaced: os.stat_result | None


@dataclass(frozen=True, slots=True)
class PlainStat:
    """`lstat` of a vault object with plain sizes."""

    mode: int
    size: int
    mtime_ns: int
    atime_ns: int
    ctime_ns: int
    nlink: int
    uid: int
    gid: int
    ino: int
    cipher_size: int

    @property
    def kind(self) -> str:
        return kind_of_mode(self.mode)


def kind_of_mode(mode: int) -> str:
    """'file', 'dir', 'symlink' or 'other' for an st_mode."""
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


def dirent_kind(entry: os.DirEntry[str]) -> str:
    """'file', 'dir', 'symlink' or 'other' from a scandir entry (no extra stat on Linux)."""
    # Files first: they are most entries, and is_file(follow_symlinks=False) is one d_type test.
    try:
        if entry.is_file(follow_symlinks=False):
            return "file"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        if entry.is_symlink():
            return "symlink"
    except OSError:
        pass
    return "other"


def split_path(path: str) -> list[str]:
    """Split a plain vault path into components; '' and '/' are the root, '..' is refused."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FsError(errno.EINVAL, f"{path!r}: '..' is not allowed in vault paths")
    return parts


_fs_error = fs_error


def _chmod_object(proc: str, st: os.stat_result, mode: int) -> None:
    """chmod of an object named by its O_PATH descriptor (Linux has no mode on a symlink)."""
    if stat_mod.S_ISLNK(st.st_mode):
        raise OSError(errno.EOPNOTSUPP, "cannot change the mode of a symlink")
    os.chmod(proc, mode)


def _settle_object(proc: str, st: os.stat_result, mode: int | None, owner: Owner | None) -> os.stat_result:
    """Give a new object exactly `mode` (a set-gid bit it inherited stays, as on a local
    filesystem) and `owner`, through its O_PATH descriptor; returns its stat afterwards."""
    changed = False
    have = stat_mod.S_IMODE(st.st_mode)
    if (
        mode is not None
        and not stat_mod.S_ISLNK(st.st_mode)
        and have & ~stat_mod.S_ISGID != mode & ~stat_mod.S_ISGID
    ):
        os.chmod(proc, stat_mod.S_IMODE(mode) | (have & stat_mod.S_ISGID))
        changed = True
    if owner is not None and (owner[0] not in (-1, st.st_uid) or owner[1] not in (-1, st.st_gid)):
        os.chown(proc, *owner)
        changed = True
    return os.stat(proc) if changed else st


def _is_dir_mode(st: os.stat_result) -> bool:
    return stat_mod.S_ISDIR(st.st_mode)


class Vault:
    """An unlocked gocryptfs vault in forward mode.

    Paths are plain, relative to the vault root, '/'-separated. Every method keeps the tree
    invariants of spec §8 so that gocryptfs and `gocryptfs -fsck` accept the result.
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
        self._inodes: dict[tuple[int, int], _InodeState] = {}
        self._xattr_disk_names: dict[bytes, str] = {}
        # Every system call on the cipher tree goes through a cached descriptor of the parent
        # directory: cipher paths may be longer than PATH_MAX, and no symlink is followed.
        self.dirs = DirFds(cipherdir)

    def close(self) -> None:
        """Give back the directory descriptors, so the cipher dir is not kept busy (also done
        when the Vault is garbage-collected). The Vault stays usable and reopens them on demand."""
        self.dirs.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cipher-tree primitives: every call relative to a directory descriptor ----------------

    def lstat_cipher(self, cpath: Path) -> os.stat_result:
        """lstat of a cipher path (raises OSError), however long the path."""
        return self.dirs.path_at(cpath, os.stat, follow_symlinks=False)

    def lstat_in(self, cparent: Path, disk: str) -> os.stat_result:
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
            raise _fs_error(e, where) from None
        if not _is_dir_mode(st):
            raise FsError(errno.ENOTDIR, f"{short_path(where)}: parent is not a directory")

    def _forget_dir(self, cipher_dir: Path) -> None:
        """Drop cached IVs and descriptors at and below a directory that is removed or moved."""
        self.dirs.forget(cipher_dir)

    # -- opening and creating ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        cipherdir: str | os.PathLike[str],
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        options: FormatOptions | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> Vault:
        """Unlock with a password (reads the config) or a master key.

        With a master key and no `options`, the config's flags are used when a config is
        readable, else gocryptfs's defaults; pass `options` to recover a vault whose config
        is lost (as `gocryptfs -masterkey` takes its settings from flags, §3.7).
        """
        root = Path(cipherdir)
        if not root.is_dir():
            raise CipherDirError(f"{root}: not a directory (no such vault)")
        conf_path = Path(config_path) if config_path else root / CONF_NAME
        key, opts, conf = unlock(
            conf_path, password=password, master_key=master_key, options=options, missing_ok=True
        )
        return cls(root, key, opts, conf)

    @classmethod
    def init(
        cls,
        cipherdir: str | os.PathLike[str],
        password: bytes,
        *,
        master_key: bytes | None = None,
        logn: int = DEFAULT_SCRYPT_LOGN,
        plaintext_names: bool = False,
        deterministic_names: bool = False,
        aessiv: bool = False,
        xchacha: bool = False,
        longname_max: int = 0,
        reverse: bool = False,
    ) -> tuple[ConfFile, bytes]:
        """Create a new vault like `gocryptfs -init` (§8.1, §9.1); returns (config, master key).

        Forward vaults need an empty directory; a reverse vault is a config beside the user's
        plain files and implies AES-SIV.
        """
        root = Path(cipherdir)
        if not root.is_dir():
            raise CipherDirError(f"{root}: not a directory")
        if reverse:
            if xchacha:
                raise InitError("--reverse implies AES-SIV and cannot use --xchacha")
            aessiv = True
            conf_path = root / REVERSE_CONF_NAME
            if conf_path.exists():
                raise InitError(f"{conf_path}: a reverse config already exists")
        else:
            if any(os.scandir(root)):
                raise CipherDirError(f"{root}: directory is not empty; init needs an empty one")
            conf_path = root / CONF_NAME
        key = master_key if master_key is not None else os.urandom(MASTER_KEY_LEN)
        conf = new_config(
            key,
            password,
            logn=logn,
            plaintext_names=plaintext_names,
            deterministic_names=deterministic_names,
            aessiv=aessiv,
            xchacha=xchacha,
            longname_max=longname_max,
        )
        conf.write(conf_path)
        if not reverse and conf.options.diriv:
            try:
                write_diriv(root)
            except OSError as e:
                conf_path.unlink(missing_ok=True)
                raise InitError(f"{root}: cannot create gocryptfs.diriv: {e.strerror}") from None
        return conf, key

    # -- path resolution --------------------------------------------------------------------

    def dir_iv(self, cipher_dir: Path) -> bytes:
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
            raise _fs_error(e, cipher_dir) from None

    def encrypt_component(self, cipher_parent: Path, name: str) -> tuple[str, str]:
        """(disk name, full encrypted name) of a plain name in a cipher directory."""
        raw = os.fsencode(name)
        if self.options.plaintext_names:
            check_plain_name(raw)
            if cipher_parent == self.cipherdir and name == CONF_NAME:
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
        for part in split_path(path):
            cur = cur / self.encrypt_component(cur, part)[0]
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

    # -- reading ----------------------------------------------------------------------------

    def listdir(self, path: str = "", *, include_bad: bool = False) -> list[DirEntry]:
        """Entries of a plain directory; undecryptable ones only with `include_bad`."""
        cdir = self.cipher_path(path)
        return self.list_cipher_dir(cdir, include_bad=include_bad, where=path or "/")

    def list_cipher_dir(
        self, cdir: Path, *, include_bad: bool = False, where: str | None = None
    ) -> list[DirEntry]:
        where = where or str(cdir)
        try:
            dfd = self.dirs.open_dir(cdir)
        except OSError as e:
            raise _fs_error(e, where) from None
        try:
            return self._list_fd(cdir, dfd, include_bad)
        finally:
            os.close(dfd)

    def _list_fd(self, cdir: Path, dfd: int, include_bad: bool) -> list[DirEntry]:
        it = os.scandir(dfd)
        out: list[DirEntry] = []
        plaintext = self.options.plaintext_names
        is_root = cdir == self.cipherdir
        iv = None if plaintext else self.dir_iv(cdir)  # a bad diriv makes the dir unlistable
        # Collect first, then decrypt all names in one batch (see EME.decrypt_many).
        names: list[str] = []  # full encrypted names to decrypt
        disk: list[tuple[str, str]] = []  # (name on disk, kind), parallel to `names`
        with it:
            for entry in it:
                cname = entry.name
                kind = dirent_kind(entry)
                if plaintext:
                    if not (is_root and cname == CONF_NAME):
                        out.append(DirEntry(cname, cname, kind))
                    continue
                if cname.startswith("gocryptfs."):  # rare: reserved, sidecar or long name
                    if self._hidden(cdir, cname):
                        continue
                    if is_long_name(cname):
                        try:
                            full = read_name_file(cdir, cname, dir_fd=dfd)
                            if self.names.hash_long(full) != cname:
                                raise NameError_(f"{cname}: .name sidecar does not match the hash")
                        except NameError_ as e:
                            if include_bad:
                                out.append(DirEntry(cname, cname, kind, str(e)))
                            continue
                        names.append(full)
                        disk.append((cname, kind))
                        continue
                names.append(cname)
                disk.append((cname, kind))
        if names:
            assert iv is not None
            for (cname, kind), res in zip(disk, self.names.decrypt_many(names, iv), strict=True):
                if type(res) is bytes:
                    out.append(DirEntry(res.decode("utf-8", "surrogateescape"), cname, kind))
                elif include_bad:
                    out.append(DirEntry(cname, cname, kind, str(res)))
        return out

    def stat(self, path: str) -> PlainStat:
        return self.stat_cipher(self.cipher_path(path), path or "/")

    def stat_cipher(self, cpath: Path, where: str) -> PlainStat:
        """Plain stat of an object known by its cipher path (saves re-encrypting the path)."""
        try:
            st = self.lstat_cipher(cpath)
        except OSError as e:
            raise _fs_error(e, where) from None
        return self._plain_stat(cpath, st)

    def _plain_stat(self, cpath: Path, st: os.stat_result) -> PlainStat:
        size = st.st_size
        if stat_mod.S_ISREG(st.st_mode):
            size = self.content.cipher_to_plain_size(size)
        elif stat_mod.S_ISLNK(st.st_mode) and not self.options.plaintext_names:
            try:
                size = len(self._decrypt_link(self.dirs.path_at(cpath, os.readlink), str(cpath)))
            except (VaultError, OSError):
                size = 0
        return PlainStat(
            mode=st.st_mode,
            size=size,
            mtime_ns=st.st_mtime_ns,
            atime_ns=st.st_atime_ns,
            ctime_ns=st.st_ctime_ns,
            nlink=st.st_nlink,
            uid=st.st_uid,
            gid=st.st_gid,
            ino=st.st_ino,
            cipher_size=st.st_size,
        )

    def exists(self, path: str) -> bool:
        try:
            self.lstat_cipher(self.cipher_path(path))
        except (OSError, VaultError):
            return False
        return True

    def readlink(self, path: str) -> str:
        return self.readlink_cipher(self.cipher_path(path), path)

    def readlink_cipher(self, cpath: Path, path: str) -> str:
        try:
            target: str = self.dirs.path_at(cpath, os.readlink)
        except OSError as e:
            raise _fs_error(e, path) from None
        if self.options.plaintext_names:
            return target
        return os.fsdecode(self._decrypt_link(target, path))

    def _decrypt_link(self, stored: str, where: str) -> bytes:
        if not stored:
            return b""
        try:
            blob = b64_decode(stored, self.options.raw64)
            return self.content.aead.open(blob, _SYMLINK_AD)
        except (ValueError, AuthenticationError):
            raise CorruptionError(f"{short_path(where)}: symlink target does not decrypt (corrupt)") from None

    def encrypt_link_target(self, target: str) -> str:
        if self.options.plaintext_names:
            return target
        raw = os.fsencode(target)
        if not raw:
            return ""
        return b64_encode(self.content.aead.seal(raw, _SYMLINK_AD), self.options.raw64)

    def open_file(self, path: str, *, writable: bool = False) -> VaultFile:
        return self.open_cipher_file(self.cipher_path(path), path, writable=writable)

    def open_cipher_file(
        self, cpath: Path, path: str, *, writable: bool = False, same: SameObject | None = None
    ) -> VaultFile:
        """Open the file at `cpath`; with `same`, only if it is still the object meant (ESTALE)."""
        # O_NONBLOCK: a FIFO planted in the cipher dir must not hang us (it is refused below);
        # on a regular file the flag changes nothing.
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = self.dirs.path_at(cpath, os.open, flags)
        except OSError as e:
            raise _fs_error(e, path) from None
        st = os.fstat(fd)
        if same is not None and not same(st):
            os.close(fd)
            raise FsError(errno.ESTALE, f"{short_path(path)}: replaced by another object")
        return VaultFile(self, fd, path, st)

    def open_lending_read(self, cpath: Path, path: str, same: SameObject | None = None) -> VaultFile:
        """Open a file the owner may write but not read (mode 0200) for writing.

        Writes need read access for read-modify-write (§5.4), so the owner is lent read
        permission for the open, as gocryptfs does: chmod, reopen and chmod back all go
        through one O_PATH descriptor, so no other object can be changed or opened meanwhile.
        """

        def lend(proc: str, st: os.stat_result) -> int:
            if not stat_mod.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            mode = stat_mod.S_IMODE(st.st_mode)
            os.chmod(proc, mode | stat_mod.S_IRUSR)
            try:
                return os.open(proc, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            finally:
                os.chmod(proc, mode)

        try:
            fd = self.dirs.with_object(cpath, lend, same)
        except OSError as e:
            raise _fs_error(e, path) from None
        return VaultFile(self, fd, path)

    def read_file(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        with self.open_file(path) as f:
            return f.read(offset, size)

    def iter_file(self, path: str) -> Iterator[memoryview]:
        """Stream the plaintext of a file in chunks of up to 1 MiB (views valid until the next)."""
        with self.open_file(path) as f:
            yield from f.iter_chunks()

    # -- writing ----------------------------------------------------------------------------

    def _prepare_new(self, path: str) -> tuple[Path, Path, str, str]:
        """Parent cipher dir, cipher path, disk name and full name of a new entry."""
        parts = split_path(path)
        if not parts:
            raise FsError(errno.EEXIST, "/: the root already exists")
        parent = self.cipher_path("/".join(parts[:-1]))
        self._check_dir(parent, path)
        disk, full = self.encrypt_component(parent, parts[-1])
        cpath = parent / disk
        if self.lexists_cipher(cpath):
            raise FsError(errno.EEXIST, f"{short_path(path)}: already exists")
        return parent, cpath, disk, full

    def _with_name_file(self, parent: Path, disk: str, full: str) -> bool:
        """Write the `.name` sidecar of a long name first (§6.7); True if this call made it."""
        if disk == full or self.options.plaintext_names:
            return False
        sync = self.sync_metadata
        return self.dirs.call(parent, lambda fd: write_name_file(parent, disk, full, sync=sync, dir_fd=fd))

    def _drop_name_file(self, parent: Path, disk: str) -> None:
        if is_long_name(disk) and not self.options.plaintext_names:
            with contextlib.suppress(FileNotFoundError):
                self.dirs.at(parent, disk + LONGNAME_SUFFIX, os.unlink)

    def _make_named(self, parent: Path, disk: str, full: str, where: str, make: Callable[[int], _T]) -> _T:
        """Create an object with the long-name `.name` sidecar written first and dropped again
        if the object cannot be made (§6.7); `make` gets the parent's descriptor."""
        made = self._with_name_file(parent, disk, full)
        try:
            return self.dirs.call(parent, make)
        except OSError as e:
            if made:
                self._drop_name_file(parent, disk)
            raise _fs_error(e, where) from None

    @staticmethod
    def _open_new(dir_fd: int, disk: str, mode: int) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(disk, flags, mode, dir_fd=dir_fd)

    def create(self, path: str, mode: int = 0o644) -> VaultFile:
        """Create an empty file (0 bytes on disk until the first write, §5.4) and open it."""
        parent, _cpath, disk, full = self._prepare_new(path)
        fd = self._make_named(parent, disk, full, path, lambda d: self._open_new(d, disk, mode))
        return VaultFile(self, fd, path)

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        with self.create(path, mode) as f:
            f.write(0, data)

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        """mkdir with a new diriv inside, then chmod to the requested mode (§8.2)."""
        parent, _cpath, disk, full = self._prepare_new(path)
        self._mkdir_named(parent, disk, full, mode, path)

    def _mkdir_named(
        self, parent: Path, disk: str, full: str, mode: int, where: str, owner: Owner | None = None
    ) -> tuple[Path, os.stat_result]:
        """mkdir, then the diriv, mode and owner, all through a descriptor of the new directory.

        The directory is born 0700, so nobody else can add to it before it is finished, and
        it is opened without following a link: a name swapped for another directory (or a
        symlink) in between is refused (ESTALE or ENOTDIR) instead of being written into,
        re-moded or given away.
        """
        cpath = parent / disk
        made = self._with_name_file(parent, disk, full)
        try:
            self.dirs.at(parent, disk, os.mkdir, 0o700)
        except OSError as e:
            if made:
                self._drop_name_file(parent, disk)
            raise _fs_error(e, where) from None
        diriv = self.options.diriv
        sync = self.sync_metadata

        def finish(pfd: int) -> tuple[int, bytes | None, os.stat_result]:
            fd = os.open(disk, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                st = os.fstat(fd)
                if os.listdir(fd) or (owner is not None and st.st_uid != os.geteuid()):
                    raise OSError(errno.ESTALE, "replaced while it was made", disk)
                iv = write_diriv(cpath, sync=sync, dir_fd=fd) if diriv else None
                try:
                    return fd, iv, _settle_object(f"/proc/self/fd/{fd}", st, mode, owner)
                except BaseException:
                    if diriv:
                        with contextlib.suppress(OSError):
                            os.unlink(DIRIV_NAME, dir_fd=fd)
                    raise
            except BaseException:
                os.close(fd)
                raise

        try:
            fd, iv, st = self.dirs.call(parent, finish)
        except OSError as e:
            if e.errno != errno.ESTALE:  # what is there now is not ours to remove
                with contextlib.suppress(OSError):
                    self.dirs.at(parent, disk, os.rmdir)
                if made:
                    self._drop_name_file(parent, disk)
            raise _fs_error(e, where) from None
        # The descriptor checked above, with the IV written through it, serves the first
        # names made in the new directory: nothing is opened or read back for them.
        self.dirs.adopt(cpath, fd, iv)
        return cpath, st

    def _settle_made(
        self, cpath: Path, kind: int, mode: int | None, owner: Owner | None, where: str
    ) -> os.stat_result:
        """Mode and owner of a non-directory this call just made, through an O_PATH descriptor
        of it; refused (ESTALE) if the name holds something else by now."""

        def settle(proc: str, st: os.stat_result) -> os.stat_result:
            if (
                stat_mod.S_IFMT(st.st_mode) != kind
                or st.st_nlink != 1
                or (owner is not None and st.st_uid != os.geteuid())
            ):
                raise OSError(errno.ESTALE, "replaced while it was made")
            return _settle_object(proc, st, mode, owner)

        try:
            return self.dirs.with_object(cpath, settle)
        except OSError as e:
            raise _fs_error(e, where) from None

    def symlink(self, target: str, path: str) -> None:
        parent, _cpath, disk, full = self._prepare_new(path)
        self._symlink_named(parent, disk, full, target, path)

    def _symlink_named(self, parent: Path, disk: str, full: str, target: str, where: str) -> Path:
        stored = self.encrypt_link_target(target)
        self._make_named(parent, disk, full, where, lambda d: os.symlink(stored, disk, dir_fd=d))
        return parent / disk

    def link(self, existing: str, new: str) -> None:
        src = self.cipher_path(existing)
        parent, _cpath, disk, full = self._prepare_new(new)
        self._link_named(src, parent, disk, full, new)

    def _link_named(self, csrc: Path, parent: Path, disk: str, full: str, where: str) -> None:
        src_dir, src_name = self.dirs.split(csrc)

        def link(_dfd: int) -> None:
            self.dirs.pair(
                src_dir,
                parent,
                lambda s, d: os.link(src_name, disk, src_dir_fd=s, dst_dir_fd=d, follow_symlinks=False),
            )

        self._make_named(parent, disk, full, where, link)

    def unlink(self, path: str) -> None:
        cpath = self.cipher_path(path)
        if cpath == self.cipherdir:
            raise FsError(errno.EISDIR, "/: cannot unlink the root")
        self._unlink_in(*self.dirs.split(cpath), path)

    def _unlink_in(self, parent: Path, name: str, where: str) -> os.stat_result:
        try:
            st = self.lstat_in(parent, name)
            if stat_mod.S_ISDIR(st.st_mode):
                raise FsError(errno.EISDIR, f"{short_path(where)}: is a directory")
            self.dirs.at(parent, name, os.unlink)
        except OSError as e:
            raise _fs_error(e, where) from None
        self._drop_name_file(parent, name)
        return st

    def rmdir(self, path: str) -> None:
        cpath = self.cipher_path(path)
        if cpath == self.cipherdir:
            raise FsError(errno.EBUSY, "/: cannot remove the vault root")
        self._rmdir_cipher(cpath, path)
        self._drop_name_file(*self.dirs.split(cpath))

    def _rmdir_cipher(self, cpath: Path, where: str, parent: Path | None = None) -> None:
        """Remove a cipher dir that holds at most its diriv, moving the diriv out first (§8.3).

        `parent` saves building the parent's Path when the caller has it."""
        if parent is None:
            parent, name = self.dirs.split(cpath)
        else:
            name = cpath.name
        try:
            dfd = self.dirs.open_dir(cpath)
        except OSError as e:
            raise _fs_error(e, where) from None
        try:
            self._rmdir_open(cpath, dfd, parent, name, where)
        finally:
            os.close(dfd)
        # An empty directory has no live subdirectories, so only its own IV and fd are stale.
        self.dirs.forget(cpath, subtree=False)

    def _rmdir_open(self, cpath: Path, dfd: int, parent: Path, name: str, where: str) -> None:
        """The body of `_rmdir_cipher`, with the directory open as `dfd`."""
        try:
            names = os.listdir(dfd)
        except OSError as e:
            raise _fs_error(e, where) from None
        if not self.options.diriv or DIRIV_NAME not in names:
            if names:
                raise FsError(errno.ENOTEMPTY, f"{short_path(where)}: directory not empty")
            try:
                self.dirs.at(parent, name, os.rmdir)
            except OSError as e:
                raise _fs_error(e, where) from None
            return
        if len(names) > 1:
            raise FsError(errno.ENOTEMPTY, f"{short_path(where)}: directory not empty")
        # Moving the diriv out first keeps a crash from leaving a dir without IV but with names.
        parked = f"{_RMDIR_PREFIX}{secrets.randbits(64)}"
        try:
            mode = os.fstat(dfd).st_mode
            if not mode & 0o200:
                os.fchmod(dfd, stat_mod.S_IMODE(mode) | 0o700)
            self.dirs.call(parent, lambda pfd: os.rename(DIRIV_NAME, parked, src_dir_fd=dfd, dst_dir_fd=pfd))
        except OSError as e:
            raise _fs_error(e, where) from None
        try:
            self.dirs.at(parent, name, os.rmdir)
        except OSError as e:
            with contextlib.suppress(OSError):  # put the IV back: the directory stays whole
                self.dirs.call(
                    parent, lambda pfd: os.rename(parked, DIRIV_NAME, src_dir_fd=pfd, dst_dir_fd=dfd)
                )
            raise _fs_error(e, where) from None
        self.dirs.at(parent, parked, os.unlink)

    def rename(self, src: str, dst: str) -> None:
        """Rename, replacing an existing file or empty directory at `dst` (§6.7, §8.4)."""
        csrc = self.cipher_path(src)
        if csrc == self.cipherdir:
            raise FsError(errno.EBUSY, "/: cannot rename the root")
        try:
            src_st = self.lstat_cipher(csrc)
        except OSError as e:
            raise _fs_error(e, src) from None
        dparts = split_path(dst)
        if not dparts:
            raise FsError(errno.EBUSY, "/: cannot replace the root")
        dparent = self.cipher_path("/".join(dparts[:-1]))
        self._check_dir(dparent, dst)
        disk, full = self.encrypt_component(dparent, dparts[-1])
        self._rename_cipher(csrc, dparent, disk, full, src, dst, src_st=src_st)

    def _rename_cipher(
        self,
        csrc: Path,
        dparent: Path,
        disk: str,
        full: str,
        src: str,
        dst: str,
        *,
        noreplace: bool = False,
        src_st: os.stat_result | None = None,
    ) -> RenameResult:
        if src_st is None:
            try:
                src_st = self.lstat_cipher(csrc)
            except OSError as e:
                raise _fs_error(e, src) from None
        cdst = dparent / disk
        if cdst == csrc:
            return RenameResult(csrc, cdst, src_st, None)
        if stat_mod.S_ISDIR(src_st.st_mode) and str(cdst).startswith(str(csrc) + "/"):
            raise FsError(errno.EINVAL, f"{short_path(dst)}: cannot move a directory into itself")
        try:
            dst_st: os.stat_result | None = self.lstat_in(dparent, disk)
        except FileNotFoundError:
            dst_st = None
        except OSError as e:
            raise _fs_error(e, dst) from None
        if dst_st is not None and noreplace:
            raise FsError(errno.EEXIST, f"{short_path(dst)}: already exists")
        if dst_st is not None and os.path.samestat(src_st, dst_st):
            # two links of one file: POSIX rename does nothing, so neither do we
            return RenameResult(csrc, csrc, src_st, None)
        if dst_st is not None:
            src_dir = stat_mod.S_ISDIR(src_st.st_mode)
            if stat_mod.S_ISDIR(dst_st.st_mode):
                if not src_dir:
                    raise FsError(errno.EISDIR, f"{short_path(dst)}: is a directory")
                # The target still holds its diriv, so the kernel would say ENOTEMPTY.
                self._rmdir_cipher(cdst, dst, dparent)
            elif src_dir:
                raise FsError(errno.ENOTDIR, f"{short_path(dst)}: not a directory")
        self._with_name_file(dparent, disk, full)
        sparent, sname = self.dirs.split(csrc)
        try:
            self.dirs.pair(sparent, dparent, lambda s, d: os.rename(sname, disk, src_dir_fd=s, dst_dir_fd=d))
        except OSError as e:
            raise _fs_error(e, f"{short_path(src)} -> {dst}") from None
        if stat_mod.S_ISDIR(src_st.st_mode):
            self._forget_dir(csrc)
        self._drop_name_file(sparent, sname)
        return RenameResult(csrc, cdst, src_st, dst_st)

    # -- cipher-level operations ------------------------------------------------------------
    # The FUSE layer knows every directory by its cipher path already, so these take the
    # parent's cipher path and a plain name instead of re-encrypting a whole plain path.
    # `where` is the plain path, used only in messages.

    def create_at(
        self,
        cparent: Path,
        name: str,
        mode: int,
        where: str,
        *,
        exact_mode: bool = False,
        owner: Owner | None = None,
    ) -> tuple[VaultFile, Path]:
        """Create and open an empty file `name` in a cipher directory (§5.4, §6.7).

        With `exact_mode` the file gets `mode` even where our umask cut it, and with `owner`
        it is given away; both act on the descriptor that created it (O_EXCL|O_NOFOLLOW)."""
        disk, full = self.encrypt_component(cparent, name)
        fd = self._make_named(cparent, disk, full, where, lambda d: self._open_new(d, disk, mode))
        st = os.fstat(fd)
        if exact_mode or owner is not None:
            try:
                st = _settle_object(f"/proc/self/fd/{fd}", st, mode if exact_mode else None, owner)
            except OSError as e:
                os.close(fd)
                raise _fs_error(e, where) from None
        return VaultFile(self, fd, where, st), cparent / disk

    def mkdir_at(self, cparent: Path, name: str, mode: int, where: str) -> Path:
        return self.make_dir(cparent, name, mode, where)[0]

    def make_dir(
        self, cparent: Path, name: str, mode: int, where: str, owner: Owner | None = None
    ) -> tuple[Path, os.stat_result]:
        """mkdir with exactly `mode`, given to `owner`; returns its cipher path and stat."""
        disk, full = self.encrypt_component(cparent, name)
        return self._mkdir_named(cparent, disk, full, mode, where, owner)

    def symlink_at(self, cparent: Path, name: str, target: str, where: str) -> Path:
        disk, full = self.encrypt_component(cparent, name)
        return self._symlink_named(cparent, disk, full, target, where)

    def make_symlink(
        self, cparent: Path, name: str, target: str, where: str, owner: Owner | None = None
    ) -> tuple[Path, os.stat_result]:
        """A symlink given to `owner`; returns its cipher path and stat."""
        cpath = self.symlink_at(cparent, name, target, where)
        return cpath, self._settle_made(cpath, stat_mod.S_IFLNK, None, owner, where)

    def link_at(
        self, csrc: Path, cparent: Path, name: str, where: str, same: SameObject | None = None
    ) -> Path:
        """A hard link: the new name shares the inode, hence header and file ID (§5.4).

        With `same`, a link to anything but the object meant (its name swapped meanwhile)
        is taken back and refused with ESTALE."""
        disk, full = self.encrypt_component(cparent, name)
        self._link_named(csrc, cparent, disk, full, where)
        if same is not None:
            try:
                st = self.lstat_in(cparent, disk)
            except OSError as e:
                raise _fs_error(e, where) from None
            if not same(st):
                with contextlib.suppress(OSError):
                    self.dirs.at(cparent, disk, os.unlink)
                self._drop_name_file(cparent, disk)
                raise FsError(errno.ESTALE, f"{short_path(where)}: source was replaced by another object")
        return cparent / disk

    def mknod_at(
        self, cparent: Path, name: str, mode: int, rdev: int, where: str, owner: Owner | None = None
    ) -> tuple[Path, os.stat_result]:
        """FIFOs, sockets and device nodes are stored as themselves (§7.3); returns the cipher
        path and stat of the node, which has exactly `mode` and is given to `owner`."""
        disk, full = self.encrypt_component(cparent, name)
        self._make_named(cparent, disk, full, where, lambda d: os.mknod(disk, mode, rdev, dir_fd=d))
        cpath = cparent / disk
        return cpath, self._settle_made(cpath, stat_mod.S_IFMT(mode), stat_mod.S_IMODE(mode), owner, where)

    def unlink_at(self, cparent: Path, name: str, where: str) -> tuple[Path, os.stat_result]:
        """Unlink a non-directory; returns its cipher path and its stat from before."""
        disk = self.encrypt_component(cparent, name)[0]
        return cparent / disk, self._unlink_in(cparent, disk, where)

    def rmdir_at(self, cparent: Path, name: str, where: str) -> tuple[Path, os.stat_result]:
        """Remove an empty directory (§8.3); returns its cipher path and its stat from before."""
        disk = self.encrypt_component(cparent, name)[0]
        cpath = cparent / disk
        try:
            st = self.lstat_in(cparent, disk)
        except OSError as e:
            raise _fs_error(e, where) from None
        self._rmdir_cipher(cpath, where, cparent)
        self._drop_name_file(cparent, disk)
        return cpath, st

    def rename_at(
        self,
        src_parent: Path,
        src_name: str,
        dst_parent: Path,
        dst_name: str,
        *,
        noreplace: bool = False,
        where: tuple[str, str] = ("", ""),
    ) -> RenameResult:
        """Rename between cipher directories, replacing a file or empty dir unless `noreplace`."""
        csrc = src_parent / self.encrypt_component(src_parent, src_name)[0]
        disk, full = self.encrypt_component(dst_parent, dst_name)
        src, dst = where
        return self._rename_cipher(
            csrc, dst_parent, disk, full, src or src_name, dst or dst_name, noreplace=noreplace
        )

    def exchange_at(
        self,
        src_parent: Path,
        src_name: str,
        dst_parent: Path,
        dst_name: str,
        *,
        where: tuple[str, str] = ("", ""),
    ) -> tuple[RenameResult, RenameResult]:
        """Swap two existing entries in one step (renameat2 RENAME_EXCHANGE, as gocryptfs does).

        Returns the move of each object. A long name's `.name` sidecar belongs to the name,
        not to the object behind it, so both sidecars stay where they are (§6.7).
        """
        src, dst = where[0] or src_name, where[1] or dst_name
        sdisk = self.encrypt_component(src_parent, src_name)[0]
        ddisk = self.encrypt_component(dst_parent, dst_name)[0]
        try:
            src_st = self.lstat_in(src_parent, sdisk)
        except OSError as e:
            raise _fs_error(e, src) from None
        try:
            dst_st = self.lstat_in(dst_parent, ddisk)
        except OSError as e:
            raise _fs_error(e, dst) from None
        try:
            self.dirs.pair(
                src_parent, dst_parent, lambda s, d: renameat2(s, sdisk, d, ddisk, RENAME_EXCHANGE)
            )
        except OSError as e:
            raise _fs_error(e, f"{short_path(src)} <-> {dst}") from None
        csrc, cdst = src_parent / sdisk, dst_parent / ddisk
        # Cached IVs and descriptors are keyed by path: both paths now hold another directory.
        for cpath, st in ((csrc, src_st), (cdst, dst_st)):
            if _is_dir_mode(st):
                self._forget_dir(cpath)
        return RenameResult(csrc, cdst, src_st, None), RenameResult(cdst, csrc, dst_st, None)

    # -- extended attributes (§7.2) ---------------------------------------------------------

    @property
    def xattr_names(self) -> NameCodec:
        """Name codec for xattr names: EME even in plaintextnames vaults (§4, §6.10)."""
        codec = self._xattr_codec
        if codec is None:
            codec = self._xattr_codec = NameCodec(self.keys.eme, self.options)
        return codec

    def xattr_disk_name(self, name: bytes) -> str:
        """The backing xattr name of a plain one: encrypted, except POSIX ACLs (§7.2)."""
        # Cached: `ls -l` through a mount asks every entry for the same few names (SELinux
        # label, ACLs), and the encryption is deterministic (a fixed IV).
        disk = self._xattr_disk_names.get(name)
        if disk is None:
            text = os.fsdecode(name)
            disk = text if text in XATTR_PASSTHROUGH else self.xattr_names.encrypt_xattr_name(name)
            if len(self._xattr_disk_names) < 256:
                self._xattr_disk_names[name] = disk
        return disk

    def encrypt_xattr_value(self, value: bytes) -> bytes:
        """A content block with block number 0 and no file ID, stored as raw bytes (§7.2)."""
        if not value:
            return b""
        return self.content.aead.seal(value, _SYMLINK_AD)

    def decrypt_xattr_value(self, stored: bytes, where: str) -> bytes:
        if not stored:
            return b""
        try:
            return self.content.aead.open(stored, _SYMLINK_AD)
        except (ValueError, AuthenticationError):
            pass
        # Old gocryptfs versions stored the encrypted value base64-encoded.
        try:
            blob = b64_decode(stored.decode("ascii"), self.options.raw64)
            return self.content.aead.open(blob, _SYMLINK_AD)
        except (ValueError, AuthenticationError):
            raise CorruptionError(f"{where}: xattr value does not decrypt (corrupt)") from None

    # xattr calls have no *at form: they go through the object's /proc/self/fd name (see
    # DirFds.with_object), which reaches the object itself, a symlink included, never what a
    # symlink points to; `same` as for chmod_cipher.

    def find_xattr(
        self, cpath: Path, name: bytes, where: str, same: SameObject | None = None
    ) -> bytes | None:
        """The plain value of an xattr of a cipher object; None if it is not set (ENODATA).

        `ls -l` asks every object for its SELinux label and ACL, which are nearly always
        absent; telling that without an exception of our own keeps the answer cheap.
        """
        disk = self.xattr_disk_name(name)
        try:
            # The everyday answer, "not set", tells nothing about anyone's data: it comes from
            # one call on the name. A value is read again from the object checked by `same`.
            self.dirs.with_entry_path(cpath, lambda p: os.getxattr(p, disk, follow_symlinks=False))
            stored = self.dirs.with_object(cpath, lambda p, _st: os.getxattr(p, disk), same)
        except OSError as e:
            if e.errno == errno.ENODATA:
                return None
            raise _fs_error(e, where) from None
        return stored if disk in XATTR_PASSTHROUGH else self.decrypt_xattr_value(stored, where)

    def set_xattr(
        self,
        cpath: Path,
        name: bytes,
        value: bytes,
        where: str,
        flags: int = 0,
        same: SameObject | None = None,
    ) -> None:
        disk = self.xattr_disk_name(name)
        stored = value if disk in XATTR_PASSTHROUGH else self.encrypt_xattr_value(value)
        try:
            self.dirs.with_object(cpath, lambda p, _st: os.setxattr(p, disk, stored, flags), same)
        except OSError as e:
            raise _fs_error(e, where) from None

    def remove_xattr(self, cpath: Path, name: bytes, where: str, same: SameObject | None = None) -> None:
        try:
            disk = self.xattr_disk_name(name)
            self.dirs.with_object(cpath, lambda p, _st: os.removexattr(p, disk), same)
        except OSError as e:
            raise _fs_error(e, where) from None

    def list_xattrs(self, cpath: Path, where: str, same: SameObject | None = None) -> list[bytes]:
        """Plain names of an object's xattrs; backing names we did not write are left out."""
        try:
            stored = self.dirs.with_object(cpath, lambda p, _st: os.listxattr(p), same)
        except OSError as e:
            raise _fs_error(e, where) from None
        out: list[bytes] = []
        for disk in stored:
            if disk in XATTR_PASSTHROUGH:
                out.append(disk.encode())
            elif disk.startswith(XATTR_PREFIX):
                with contextlib.suppress(NameError_):
                    out.append(self.xattr_names.decrypt_xattr_name(disk))
        return out

    def chmod(self, path: str, mode: int) -> None:
        try:
            self.chmod_cipher(self.cipher_path(path), mode)
        except OSError as e:
            raise _fs_error(e, path) from None

    def utime(self, path: str, atime_ns: int, mtime_ns: int) -> None:
        try:
            self.utime_cipher(self.cipher_path(path), (atime_ns, mtime_ns))
        except OSError as e:
            raise _fs_error(e, path) from None

    # -- tree helpers -----------------------------------------------------------------------

    def walk(self, path: str = "") -> Iterator[tuple[str, list[DirEntry]]]:
        """Depth-first (plain dir path, entries sorted by plain name), like os.walk."""
        entries = sorted(self.listdir(path), key=lambda e: e.name)
        yield path, entries
        for e in entries:
            if e.is_dir:
                yield from self.walk(f"{path}/{e.name}" if path else e.name)

    def key_fits(self, sample: int = 16) -> bool | None:
        """Whether the master key is this vault's, judged from the root: None if it can't tell.

        For a bare master key only (recover, --masterkey): a key unwrapped from the config is
        proven by the config's GCM tag already (§3.5) and is never put to this test.
        File content is authenticated (AES-GCM/SIV tags, §5.1), so one file of the root that
        decrypts settles it either way. Names alone are weaker evidence: a wrong key passes
        the padding check of an EME name (§6.2) about 1 time in 256, so they are put to a
        majority vote. Only names shaped like encrypted ones vote: a stray `.DS_Store` or
        `desktop.ini` beside real directories is no vault object under any key. An empty root
        (or plaintext names with no file content) cannot tell.
        """
        try:
            listed = self.list_cipher_dir(self.cipherdir, include_bad=True)
        except VaultError:
            # The root's diriv is missing or not a file: no key reads names here, so this
            # says nothing about the key; the listing reports the damage (EIO) itself.
            return None
        if self.options.plaintext_names:
            entries = listed[:sample]
        else:
            raw64 = self.options.raw64
            entries = [
                e
                for e in listed
                if e.kind != "other"
                and not e.cipher_name.startswith("gocryptfs.")
                and looks_encrypted(e.cipher_name, raw64)
            ][:sample]
        content_failed = False
        for e in entries:
            if e.error or e.kind != "file":
                continue
            fits = self._first_block_fits(self.cipherdir / e.cipher_name)
            if fits:
                return True
            content_failed = content_failed or fits is False
        if content_failed:
            return False
        if self.options.plaintext_names or not entries:
            return None
        good = sum(1 for e in entries if not e.error)
        return good > len(entries) - good

    def _first_block_fits(self, cpath: Path) -> bool | None:
        """Whether the first content block of a cipher file authenticates under this key; None
        when the file holds no such block (empty, header only, a hole, or no vault header:
        a stray file copied in is no evidence either way)."""
        codec = self.content
        try:
            with self.open_cipher_file(cpath, cpath.name) as f:
                head = os.pread(f.fileno(), HEADER_LEN + codec.cipher_block, 0)
        except (OSError, VaultError):
            return None
        body = head[HEADER_LEN:]
        if len(body) <= codec.overhead or not body[:16].strip(b"\0"):
            return None  # nothing, or an all-zero nonce: a hole reads as zeros under any key
        try:
            file_id = parse_header(head, cpath.name)
            codec.aead.open(body, block_ad(0, file_id))
        except CorruptionError:
            return None
        except AuthenticationError:
            return False
        return True

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


def _read_diriv_at(cipher_dir: Path, dir_fd: int) -> bytes:
    return read_diriv(cipher_dir, dir_fd=dir_fd)


class VaultFile:
    """An open vault file: random-access read, write and truncate with gocryptfs's rules (§5.3).

    Not thread-safe; the FUSE layer serialises access per inode.
    """

    def __init__(self, vault: Vault, fd: int, where: str, st: os.stat_result | None = None) -> None:
        """Take over `fd`; `st` is its fstat if the caller has one already."""
        self.vault = vault
        self.codec = vault.content
        self.fd = fd
        self.where = where
        if st is None:
            st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            self.fd = -1
            err = errno.EISDIR if stat_mod.S_ISDIR(st.st_mode) else errno.EINVAL
            raise FsError(err, f"{short_path(where)}: not a regular file")
        self._key = (st.st_dev, st.st_ino)
        state = vault._inodes.get(self._key)
        if state is None:
            state = vault._inodes[self._key] = _InodeState()
        state.refs += 1
        self._state = state
        self._write_buf = bytearray()  # cipher output of writes, reused (see encrypt_blocks)
        self._read_buf = bytearray()  # plaintext of read_view, reused
        self._read_buf_zeros = 0  # how much of it is known to be zeros

    def __enter__(self) -> VaultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self._state.refs -= 1
            if self._state.refs == 0:
                self.vault._inodes.pop(self._key, None)

    def fileno(self) -> int:
        return self.fd

    def cipher_size(self) -> int:
        return os.fstat(self.fd).st_size

    def size(self) -> int:
        return self.codec.cipher_to_plain_size(self.cipher_size())

    def _read_file_id(self) -> bytes | None:
        state = self._state
        if state.file_id is None:
            raw = os.pread(self.fd, HEADER_LEN + 1, 0)
            if len(raw) <= HEADER_LEN:
                return None  # empty or header-only: treated as empty (§5.4)
            state.file_id = parse_header(raw, self.where)
        return state.file_id

    # -- read ---------------------------------------------------------------------------

    def read(self, offset: int = 0, size: int = -1) -> bytes:
        plain_size = self.size()
        if size < 0:
            size = plain_size - offset
        end = min(offset + size, plain_size)
        if offset >= end:
            return b""
        file_id = self._read_file_id()
        if file_id is None:
            return b""
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        data = self._pread_blocks(first, last - first + 1)
        plain = self.codec.decrypt_blocks(data, first, file_id, self.where)
        skip = offset - first * BLOCK_SIZE
        return plain[skip : skip + end - offset]

    def read_view(self, offset: int, size: int) -> memoryview:
        """Like `read`, but the result is a view of a buffer that this file reuses.

        For servers that hand the bytes on at once (the FUSE read path): it saves allocating,
        zeroing and copying a buffer per request. The view is valid until the next call.
        """
        cipher_size = self.cipher_size()
        end = min(offset + size, self.codec.cipher_to_plain_size(cipher_size))
        if offset >= end:
            return memoryview(b"")
        file_id = self._read_file_id()
        if file_id is None:
            return memoryview(b"")
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        need = (last - first + 1) * BLOCK_SIZE
        buf = self._read_buf
        if len(buf) < need:
            buf = bytearray(need)
            if need <= _KEEP_IO_BUF:
                self._read_buf, self._read_buf_zeros = buf, need
        if self._in_hole(first, last - first + 1, cipher_size):
            # Holes are zeros (§5.3): nothing to read or decrypt, and a buffer that still
            # holds the zeros of the last hole read needs not even be cleared.
            if buf is not self._read_buf or self._read_buf_zeros < need:
                buf[:need] = bytes(need)
                if buf is self._read_buf:
                    self._read_buf_zeros = need
            n = need
        else:
            data = self._pread_blocks(first, last - first + 1)
            n = self.codec.decrypt_into(data, first, file_id, buf, self.where)
            if buf is self._read_buf:
                self._read_buf_zeros = 0
        skip = offset - first * BLOCK_SIZE
        return memoryview(buf)[skip : min(n, skip + end - offset)]

    def _in_hole(self, first: int, count: int, cipher_size: int) -> bool:
        """Whether whole cipher blocks `first`.. lie in a hole of the cipher file (SEEK_DATA).

        A sparse file then reads at the speed of zero-filling memory: the kernel is not asked
        for megabytes of zeros, nor each all-zero block compared before it is skipped (§5.3).
        A short last block is never a hole (an all-zero one is damage): it takes the normal path.
        """
        start = self.codec.cipher_offset(first)
        stop = start + count * self.codec.cipher_block
        if stop > cipher_size:
            return False
        try:
            return os.lseek(self.fd, start, os.SEEK_DATA) >= stop
        except OSError as e:  # ENXIO: no data after `start`; EINVAL: no SEEK_DATA here
            return e.errno == errno.ENXIO

    def _pread_blocks(self, first: int, count: int) -> bytes:
        start = self.codec.cipher_offset(first)
        return os.pread(self.fd, count * self.codec.cipher_block, start)

    def iter_chunks(self) -> Iterator[memoryview]:
        """Stream the whole plaintext, 1 MiB at a time.

        Each chunk is a view of one reused buffer, valid until the next iteration: export
        writes it out directly instead of copying a megabyte per step.
        """
        codec = self.codec
        return self._iter_decrypted(
            lambda data, block, file_id, out: codec.decrypt_into(data, block, file_id, out, self.where)
        )

    def iter_salvaged(self, on_bad: Callable[[int, str], None]) -> Iterator[memoryview]:
        """Like `iter_chunks`, but a damaged block comes out as zeros and is reported to
        `on_bad(block number, why)`, so the rest of the file is saved (gocryptfs's
        -force_decode). A damaged header still fails: without the file ID nothing decrypts.
        """
        codec = self.codec
        return self._iter_decrypted(
            lambda data, block, file_id, out: codec.decrypt_into_salvaging(
                data, block, file_id, out, on_bad, self.where
            )
        )

    def _iter_decrypted(
        self, decrypt_into: Callable[[bytes, int, bytes, bytearray], int]
    ) -> Iterator[memoryview]:
        """The file in chunks of CHUNK_BLOCKS blocks, each decrypted by `decrypt_into(cipher
        data, first block, file ID, out)` into one reused buffer."""
        file_id = self._read_file_id()
        if file_id is None:
            return
        out = bytearray(CHUNK_BLOCKS * BLOCK_SIZE)
        view = memoryview(out)
        block = 0
        while True:
            data = self._pread_blocks(block, CHUNK_BLOCKS)
            if not data:
                return
            n = decrypt_into(data, block, file_id, out)
            yield view[:n]
            if len(data) < CHUNK_BLOCKS * self.codec.cipher_block:
                return
            block += CHUNK_BLOCKS

    def decrypt_to(
        self, out_fd: int, step: Callable[[int], None] | None = None, *, processes: int = 1
    ) -> int:
        """Decrypt the whole file into `out_fd`; returns the plaintext bytes written.

        Big files go through vault/bulk.py: a read-ahead/write-behind pipeline, or with
        `processes=2` two forked workers on alternate chunks (AES holds the GIL, so threads
        cannot use a second core). `step` is called with plaintext byte counts.
        """
        from vaultsh.vault import bulk

        return bulk.decrypt_to(self, out_fd, step, processes=processes)

    # -- write --------------------------------------------------------------------------

    def _ensure_header(self) -> bytes:
        file_id = self._read_file_id()
        if file_id is None:
            file_id = new_file_id()
            # A header-only leftover (c <= 18) is overwritten: it had no content (§5.2). No
            # ftruncate(0) first: ext4 takes a truncate-then-write file for a rewrite and
            # flushes it on close, which made every new file cost a disk write at release.
            os.pwrite(self.fd, make_header(file_id), 0)
            self._state.file_id = file_id
        return file_id

    def write(self, offset: int, data: bytes | memoryview) -> int:
        """Write plaintext at `offset`, padding the old last block when writing past EOF."""
        if not data:
            return 0
        plain_size = self.size()
        first_target = offset // BLOCK_SIZE
        next_block = plain_size // BLOCK_SIZE  # where an append would go
        if first_target > next_block and plain_size % BLOCK_SIZE:
            # Block positions are fixed, so a short last block must become full first (§5.3).
            self._write_range(plain_size, bytes(BLOCK_SIZE - plain_size % BLOCK_SIZE), plain_size)
            plain_size += BLOCK_SIZE - plain_size % BLOCK_SIZE
        self._write_range(offset, memoryview(data), plain_size)
        return len(data)

    def _write_range(self, offset: int, data: bytes | memoryview, plain_size: int) -> None:
        file_id = self._ensure_header()
        codec = self.codec
        mv = memoryview(data)
        end = offset + len(mv)
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        head = offset - first * BLOCK_SIZE
        # Old plaintext is only needed for partially covered blocks that hold data: the first
        # when the write starts inside it or ends short of the file's end within it, the
        # last when the write ends inside it before the end of the file.
        need_head = head > 0 or (first == last and len(mv) < BLOCK_SIZE and end < plain_size)
        need_tail = last != first and end % BLOCK_SIZE != 0 and end < plain_size
        plain: bytes | bytearray | memoryview = mv
        if need_head or need_tail:
            buf = bytearray()
            if need_head:
                old = self._old_block(first, plain_size, file_id)
                buf += old[:head]
                if len(buf) < head:
                    buf += bytes(head - len(buf))
                buf += mv
                if first == last:
                    buf += old[head + len(mv) :]
            else:
                buf += mv
            if need_tail:
                buf += self._old_block(last, plain_size, file_id)[end - last * BLOCK_SIZE :]
            plain = buf
        need = codec.cipher_run_size(len(plain))
        out = self._write_buf
        if len(out) < need <= _KEEP_IO_BUF:
            out = self._write_buf = bytearray(need)
        blob = codec.encrypt_blocks(plain, first, file_id, out)
        try:
            self._pwrite_all(blob, codec.cipher_offset(first))
        finally:
            blob.release()  # the reused buffer may be replaced by a larger one next time

    def _pwrite_all(self, data: memoryview, offset: int) -> None:
        """Write all of `data`: a short write is retried, so a full disk reports ENOSPC."""
        done = 0
        while done < len(data):
            try:
                n = os.pwrite(self.fd, data[done:], offset + done)
            except OSError as e:
                raise _fs_error(e, self.where) from None
            if n == 0:
                raise FsError(errno.EIO, f"{self.where}: write stalled at {done} of {len(data)} bytes")
            done += n

    def _old_block(self, block: int, plain_size: int, file_id: bytes) -> bytes:
        """Current plaintext of one block, or b"" beyond the end of the file."""
        if block * BLOCK_SIZE >= plain_size:
            return b""
        raw = self._pread_blocks(block, 1)
        return self.codec.decrypt_block(raw, block, file_id, self.where)

    def truncate(self, new_size: int) -> None:
        """Grow or shrink to `new_size` plain bytes with gocryptfs's hole rules (§5.3)."""
        old = self.size()
        if new_size == old:
            return
        codec = self.codec
        if new_size == 0:
            os.ftruncate(self.fd, 0)
            self._state.file_id = None  # the next write creates a new file ID
            return
        if new_size < old:
            file_id = self._read_file_id()
            assert file_id is not None
            block, keep = divmod(new_size, BLOCK_SIZE)
            if keep == 0:
                os.ftruncate(self.fd, codec.cipher_offset(block))
                return
            raw = self._pread_blocks(block, 1)
            plain = codec.decrypt_block(raw, block, file_id, self.where)[:keep]
            os.ftruncate(self.fd, codec.cipher_offset(block))
            os.pwrite(self.fd, codec.encrypt_block(plain, block, file_id), codec.cipher_offset(block))
            return
        if old > 0 and (old - 1) // BLOCK_SIZE == (new_size - 1) // BLOCK_SIZE:
            self._write_range(old, bytes(new_size - old), old)
            return
        if old % BLOCK_SIZE:
            self._write_range(old, bytes(BLOCK_SIZE - old % BLOCK_SIZE), old)
        if new_size % BLOCK_SIZE == 0:
            self._ensure_header()
            os.ftruncate(self.fd, codec.plain_to_cipher_size(new_size))
        else:
            self.write(new_size - 1, b"\0")

    def fsync(self) -> None:
        os.fsync(self.fd)


class _InodeState:
    """What all open handles of one cipher inode share."""

    __slots__ = ("file_id", "refs")

    def __init__(self) -> None:
        self.file_id: bytes | None = None
        self.refs = 0
