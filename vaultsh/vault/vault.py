"""The Vault API: plain-path operations over a gocryptfs cipher directory (spec §5–§8)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from vaultsh.crypto.aead import AuthenticationError
from vaultsh.vault.config import (
    CONF_NAME,
    DEFAULT_SCRYPT_LOGN,
    REVERSE_CONF_NAME,
    ConfFile,
    new_config,
    unlock,
)
from vaultsh.vault.content import HEADER_LEN, block_ad, parse_header
from vaultsh.vault.core import SameObject
from vaultsh.vault.errors import (
    CipherDirError,
    CorruptionError,
    FsError,
    InitError,
    VaultError,
    fs_error,
    short_path,
)
from vaultsh.vault.file import VaultFile
from vaultsh.vault.keys import MASTER_KEY_LEN, FormatOptions
from vaultsh.vault.names import NameError_, is_long_name, looks_encrypted, read_name_file, write_diriv
from vaultsh.vault.ops import TreeOps
from vaultsh.vault.xattr import XattrOps


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


class Vault(TreeOps, XattrOps):
    """An unlocked gocryptfs vault in forward mode.

    Paths are plain, relative to the vault root, '/'-separated. Every method keeps the tree
    invariants of spec §8 so that gocryptfs and `gocryptfs -fsck` accept the result.

    The class joins parts kept in their own modules: vault.core (keys, codecs, name
    translation), vault.ops (create, remove, rename) and vault.xattr; an open file is a
    vault.file.VaultFile. Defined here: opening and creating a vault, listing, stat, reading,
    and the key check of recovery.
    """

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
            raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None
        return self._plain_stat(cpath, st)

    def _plain_stat(self, cpath: Path, st: os.stat_result) -> PlainStat:
        size = st.st_size
        if stat_mod.S_ISREG(st.st_mode):
            size = self.content.cipher_to_plain_size(size)
        elif stat_mod.S_ISLNK(st.st_mode) and not self.options.plaintext_names:
            try:
                size = len(self.decrypt_link(self.dirs.path_at(cpath, os.readlink), str(cpath)))
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
            raise fs_error(e, path) from None
        if self.options.plaintext_names:
            return target
        return os.fsdecode(self.decrypt_link(target, path))

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
            raise fs_error(e, path) from None
        st = os.fstat(fd)
        if same is not None and not same(st):
            os.close(fd)
            raise FsError(errno.ESTALE, f"{short_path(path)}: replaced by another object")
        return self._file(fd, path, st)

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
            raise fs_error(e, path) from None
        return self._file(fd, path)

    def read_file(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        with self.open_file(path) as f:
            return f.read(offset, size)

    def iter_file(self, path: str) -> Iterator[memoryview]:
        """Stream the plaintext of a file in chunks of up to 1 MiB (views valid until the next)."""
        with self.open_file(path) as f:
            yield from f.iter_chunks()

    def chmod(self, path: str, mode: int) -> None:
        try:
            self.chmod_cipher(self.cipher_path(path), mode)
        except OSError as e:
            raise fs_error(e, path) from None

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
        decrypts settles it either way; failing that, one in the first of its directories that
        decrypts proves the key.
        Names alone are weaker evidence: a wrong key passes the padding check of an EME name
        (§6.2) about 1 time in 256, so they are put to a majority vote. Only names shaped
        like encrypted ones vote: a stray `.DS_Store` or `desktop.ini` beside real
        directories is no vault object under any key. An empty root (or plaintext names with
        no file content) cannot tell.
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
        settled = self._content_fits(self.cipherdir, [e for e in entries if not e.error])
        if settled is not None:
            return settled
        if self.options.plaintext_names or not entries:
            return None
        # No file of the root settles it: one level down, a file that decrypts does (a root of
        # a single directory would otherwise rest on one name). A file there that fails is no
        # proof of a wrong key (it may be damaged), so the names below join the vote instead.
        voters = list(entries)
        for e in entries[:4]:
            if e.kind != "dir":
                continue
            below = self.cipherdir / e.cipher_name
            try:
                listed = self.list_cipher_dir(below, include_bad=True)
            except VaultError:
                continue
            names = [b for b in listed if looks_encrypted(b.cipher_name, self.options.raw64)]
            if self._content_fits(below, names[:sample]):
                return True
            voters += names[:sample]
        good = sum(1 for e in voters if not e.error)
        return good > len(voters) - good

    def _content_fits(self, cdir: Path, entries: list[DirEntry]) -> bool | None:
        """Whether the files among `entries` of `cdir` decrypt: True if one does, False if one
        failed and none did, None if none holds a block to try."""
        failed = False
        for e in entries:
            if e.kind != "file":
                continue
            fits = self._first_block_fits(cdir / e.cipher_name)
            if fits:
                return True
            failed = failed or fits is False
        return False if failed else None

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
