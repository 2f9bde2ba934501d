"""Reverse mode: the deterministic encrypted view of a plain directory, as `gocryptfs -reverse` (§9)."""

# Longer than 600 lines on purpose: the view's names, IVs, sizes and contents are all derived
# from one plain path (§9), so ViewStat, ReverseEntry and ReverseView share the derivations,
# the fd-relative resolution of plain paths and the exclude rules that decide what exists;
# its side of the Tree interface (listing, x-ray, streaming what it serves) reads them too.

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import stat as stat_mod
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple, TypeVar

from vaultsh.vault.cipher_entries import (
    BATCH,
    FIRST_BATCH,
    ROLE_CONF,
    ROLE_DIRIV,
    ROLE_OBJECT,
    ROLE_SIDECAR,
    Cancelled,
    CipherEntry,
    chunks,
)
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, ConfFile, parse_config, unlock
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN, ContentCodec, make_header
from vaultsh.vault.dirfds import DirFds
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import ConfigError, ExcludeError, FsError, UsageError, VaultError, fs_error
from vaultsh.vault.keys import FormatOptions, Keys
from vaultsh.vault.names import (
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    ZERO_IV,
    NameCodec,
    NameError_,
    b64_encode,
    is_long_name,
    read_regular,
)
from vaultsh.vault.tree import READ_UNTRUSTED, ExportKind, TreeNode, regular_file_chunks
from vaultsh.vault.vault import PlainStat, dirent_kind, kind_of_mode
from vaultsh.vault.xray import XRAY_BLOCKS, Fact, XRay, config_facts, content_facts, name_facts

_T = TypeVar("_T")
_SYMLINK_AD = struct.pack(">Q", 0)
_MASK64 = (1 << 64) - 1
PATH_MAX = 4096  # longest symlink target the kernel accepts (§7.1)
VIRTUAL_MODE = stat_mod.S_IFREG | 0o444  # gocryptfs.diriv and .name files (§9.3)

# ViewStat.tag: which object of the view a stat describes, so that virtual files, which borrow
# the (dev, ino) of a real object, can be given inode numbers of their own.
TAG_REAL = 0
TAG_DIRIV = 1
TAG_NAME_FILE = 2
TAG_CONF = 3


def derive(cipher_path: str, purpose: str) -> bytes:
    """SHA-256(P || 0x00 || purpose)[0:16], P the cipher path without leading slash (§9.2)."""
    return hashlib.sha256(cipher_path.encode() + b"\0" + purpose.encode("ascii")).digest()[:16]


def block_nonce(block0_iv: bytes, block_no: int) -> bytes:
    """Nonce of block n: bytes 0..7 of BLOCK0IV, then BE64(its last 8 bytes + n) (§9.2)."""
    counter = (int.from_bytes(block0_iv[8:], "big") + block_no) & _MASK64
    return block0_iv[:8] + counter.to_bytes(8, "big")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


# -- resolving plain paths afresh ---------------------------------------------------------------
#
# The view derives IVs from paths (§9.2), and others rename in the plain tree while it is up, so
# every access resolves its path anew: a cached directory descriptor that followed its
# directory to another name would pair one path's IVs with another path's file. openat2(2)
# (Linux 5.6) resolves a whole relative path in one system call, refusing symlinks on the way
# and anything outside the plain dir; the component-by-component walk of DirFds is the
# fallback where it is missing or refuses (a symlink on the way then fails there as ENOTDIR).


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_SYS_OPENAT2 = 437  # the same number on every Linux architecture (added after the unification)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
# Errors after which the walk decides: no such call, a symlink on the way, a rename racing the
# resolution, a path too long for one call.
_WALK_INSTEAD = frozenset({errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.ELOOP, errno.EXDEV,
                           errno.EAGAIN, errno.ENAMETOOLONG, errno.EINVAL})  # fmt: skip
_syscall: Callable[..., int] | None
try:
    _syscall = ctypes.CDLL(None, use_errno=True).syscall
except (OSError, AttributeError):  # pragma: no cover - not glibc/musl: the walk is used
    _syscall = None


def _openat2_dir(root_fd: int, rel: str) -> int:
    """An O_PATH descriptor of directory `rel` below `root_fd`, or -1 if the walk must decide."""
    if _syscall is None:
        return -1
    how = _OpenHow(
        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
        0,
        _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS,
    )
    fd = int(_syscall(_SYS_OPENAT2, root_fd, os.fsencode(rel), ctypes.byref(how), ctypes.sizeof(how)))
    if fd >= 0:
        return fd
    err = ctypes.get_errno()
    if err in _WALK_INSTEAD:
        return -1
    raise OSError(err, os.strerror(err), rel)


# -- exclusion (§9.3) ---------------------------------------------------------------------------
#
# gocryptfs 2.3 matches -exclude-wildcard / -exclude-from lines with the go-gitignore library,
# which turns each line into a regular expression. Its rules differ from git's in ways that
# decide what the view shows, so they are reproduced here rather than git's (checked against
# the gocryptfs 2.3 binary): `?` is a literal question mark; a pattern with a slash is anchored
# only when it also has `*.` after the slash (`a/b` also hides `x/a/b`); `dir/**` hides `dir`
# itself; `dir/` hides what is below `dir` but leaves `dir` listed (empty); characters such as
# `+`, `(` or `[...]` keep their regular-expression meaning. A line whose expression does not
# compile is silently dropped by gocryptfs; here it is an error (exit code 29).

_STAR_MARK = "#$~"  # stands in for a `*` that must survive the single-star rewrite
_ANCHOR_HINT = re.compile(r"([^/+])/.*\*\.")


def exclude_regex(line: str) -> tuple[str, bool] | None:
    """(regular expression, negated) for one gitignore line, or None for blanks and comments."""
    translated = _translate_line(line)
    if translated is None:
        return None
    core, negated = translated
    # A match also covers everything below the matched path: "(|/.*)" at the end.
    expr = core + ("(|.*)" if core.endswith("/") else "(|/.*)") + r"\Z"
    expr = "^(|/)" + expr[1:] if expr.startswith("/") else "^(|.*/)" + expr
    return expr, negated


def _translate_line(line: str) -> tuple[str, bool] | None:
    """The line rewritten into a regular expression, before anchoring; and whether negated."""
    line = line.rstrip("\r")
    if line.startswith("#"):
        return None
    line = line.strip(" ")
    if not line:
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    if line[:1] in ("#", "!"):  # one more # or ! (after "!" or leading blanks) is dropped
        line = line[1:]
    if _ANCHOR_HINT.search(line) and not line.startswith("/"):
        line = "/" + line
    line = line.replace(".", "\\.")
    if line.startswith("/**/"):
        line = line[1:]
    line = line.replace("/**/", "(/|/.+/)")
    line = line.replace("**/", f"(|.{_STAR_MARK}/)")
    line = line.replace("/**", f"(|/.{_STAR_MARK})")
    line = line.replace("\\*", "\\" + _STAR_MARK)
    line = line.replace("*", "([^/]*)")
    line = line.replace("?", "\\?")
    return line.replace(_STAR_MARK, "*"), negated


def _why_invalid(pattern: str, error: re.error) -> str:
    # The pattern's own text says it better than the anchored expression built around it
    # (an open "[" would otherwise be reported as swallowing the closing anchor).
    translated = _translate_line(pattern)
    if translated is not None:
        try:
            re.compile(translated[0])
        except re.error as own:
            return own.msg
    return error.msg


class ExcludeMatcher:
    """gitignore-style exclusion of plain relative paths, as `gocryptfs -reverse -exclude*`."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._rules: list[tuple[re.Pattern[str], bool]] = []
        for pattern in self.patterns:
            compiled = exclude_regex(pattern)
            if compiled is None:
                continue
            try:
                self._rules.append((re.compile(compiled[0]), compiled[1]))
            except re.error as e:
                raise ExcludeError(f"exclude pattern {pattern!r}: {_why_invalid(pattern, e)}") from None

    def __bool__(self) -> bool:
        return bool(self._rules)

    def matches(self, plain_path: str) -> bool:
        """True if `plain_path` ("a/b", no leading slash) is hidden; the root never is."""
        if not plain_path:
            return False
        hidden = False
        for rx, negated in self._rules:
            if (hidden if not negated else not hidden) or rx.search(plain_path) is None:
                continue
            hidden = not negated
        return hidden


class ViewStat(NamedTuple):
    """What stat(2) shows for one entry of the view, plus the identity of the object behind it.

    (dev, ino, tag) names the plain object the attributes come from; tag is TAG_REAL for real
    entries and tells the virtual files (which borrow their directory's or named object's
    inode) apart.
    """

    mode: int
    size: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    blocks: int
    blksize: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    dev: int
    ino: int
    tag: int


@dataclass(frozen=True, slots=True)
class ReverseEntry:
    """One entry of the encrypted view.

    `plain` is the plain path (relative) of a real object; virtual entries (diriv, `.name`
    files, the config) carry their content in `data` instead, and `stat_from` names the plain
    object whose owner and times they show (the directory for a diriv, the named object for
    a `.name` file).
    """

    cipher_name: str
    cipher_path: str
    kind: str  # "file", "dir", "symlink", "other"
    plain: str | None = None
    data: bytes | None = None
    stat_from: str | None = None


# What a lookup found, and the lstat of the plain object it made (None for a virtual file).
_Found = tuple[ReverseEntry, os.stat_result | None]


class ReverseView:
    """Produces gocryptfs -reverse's read-only encrypted view of a plain tree, byte for byte.

    It is also a `vaultsh.vault.tree.Tree` whose plain side is the folder's own files (see
    "the view as a Tree" below): the read-only commands treat it like a vault.
    """

    writable: ClassVar[bool] = False  # the view changes only through its plain files
    exports: ClassVar[ExportKind] = "cipher"  # an export of the view is an encrypted backup
    cipher_files: ClassVar[bool] = False  # computed from the plain files on each read
    cipher_place: ClassVar[str] = "in the encrypted view"
    status_note: ClassVar[str] = "reverse (read-only view)"

    def __init__(
        self, plaindir: Path, master_key: bytes, options: FormatOptions, conf_path: Path | None
    ) -> None:
        if not options.aessiv:
            raise ConfigError(f"{plaindir}: reverse mode needs an AES-SIV vault (AESSIV flag)")
        self.plaindir = plaindir
        self.options = options
        self.conf_path = conf_path
        # The config it was unlocked from, if read (None with a master key and options), as
        # a vault keeps its own: passwd, masterkey and info work on either.
        self.conf: ConfFile | None = None
        self.keys = keys = Keys(master_key, options)
        self.names = NameCodec(None if options.plaintext_names else keys.eme, options)
        self.content = ContentCodec(keys.content)
        # Reverse mode hashes above 255 *or* longNameMax (§6.7); no -longnames=false here.
        self._long_max = min(255, options.longname_max)
        self.excludes = ExcludeMatcher(())
        # With a config outside the plain dir (gocryptfs -config), the view shows no
        # gocryptfs.conf and a plain .gocryptfs.reverse.conf is an ordinary file.
        self.config_custom = False
        # The plain tree is read relative to directory fds: a plain path below PATH_MAX can
        # still be too long with the plain dir's own path in front of it. None is kept: the
        # plain tree is renamed in by others while the view is up, and a descriptor that
        # followed its directory elsewhere would pair one path's IVs with another's file.
        self.dirs = DirFds(plaindir, max_age=-1.0)

    # -- the plain tree, relative to directory descriptors ----------------------------------

    def plain_path(self, plain: str) -> Path:
        """The plain object's path, for messages and as a key of `dirs` (never opened whole)."""
        return self.plaindir / plain if plain else self.plaindir

    def _at(self, plain: str, fn: Callable[..., _T], *args: object, **kw: object) -> _T:
        """`fn(last component, *args, dir_fd=<its directory, resolved now>, **kw)`."""
        parent, _, name = plain.rpartition("/")
        if not parent:  # the plain dir itself, or a name in it: its descriptor never moves
            return self.dirs.path_at(self.plain_path(plain), fn, *args, **kw)
        fd = self.dirs.call(self.plaindir, lambda root: _openat2_dir(root, parent))
        if fd < 0:
            return self.dirs.at(self.plain_path(parent), name, fn, *args, **kw)
        try:
            return fn(name, *args, dir_fd=fd, **kw)
        finally:
            os.close(fd)

    def lstat_plain(self, plain: str) -> os.stat_result:
        """lstat of a plain path of the view's tree (raises OSError)."""
        return self._at(plain, os.stat, follow_symlinks=False)

    def readlink_plain(self, plain: str) -> str:
        target: str = self._at(plain, os.readlink)
        return target

    def open_plain(self, plain: str) -> int:
        """A read-only fd of a plain file: a symlink is not followed, a FIFO (which the caller
        then refuses by its fstat) not waited on."""
        return self._at(plain, os.open, READ_UNTRUSTED)

    def _scan(self, plain_dir: str) -> list[os.DirEntry[str]]:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._at(plain_dir, os.open, flags) if plain_dir else self.dirs.open_dir(self.plaindir)
        try:
            with os.scandir(fd) as it:
                return list(it)
        finally:
            os.close(fd)

    def set_excludes(self, patterns: Sequence[str]) -> None:
        """Hide plain paths matching these gitignore lines (-exclude-wildcard / -exclude-from).

        gocryptfs's anchored `-exclude PATH` is the line "/PATH". Raises ExcludeError for a
        pattern that cannot be compiled.
        """
        self.excludes = ExcludeMatcher(patterns)

    def is_excluded(self, plain_path: str) -> bool:
        return bool(self.excludes) and self.excludes.matches(plain_path)

    @classmethod
    def open(
        cls,
        plaindir: str | os.PathLike[str],
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        options: FormatOptions | None = None,
        excludes: Sequence[str] = (),
        config_path: str | os.PathLike[str] | None = None,
    ) -> ReverseView:
        """Unlock the plain dir's reverse config; `excludes` are gitignore lines to hide."""
        root = Path(plaindir)
        conf_path = Path(config_path) if config_path is not None else root / REVERSE_CONF_NAME
        key, opts, conf = unlock(
            conf_path, password=password, master_key=master_key, options=options, missing_ok=False
        )
        if config_path is not None:
            view = cls(root, key, opts, None)
            view.config_custom = True
        else:
            view = cls(root, key, opts, conf_path if conf_path.exists() else None)
        view.conf = conf
        view.set_excludes(excludes)
        return view

    # -- derivations --------------------------------------------------------------------

    def dir_iv(self, cipher_path: str) -> bytes:
        return ZERO_IV if self.options.deterministic_names else derive(cipher_path, "DIRIV")

    def encrypt_name(self, cipher_parent: str, name: str) -> tuple[str, str]:
        """(disk name, full encrypted name) of a plain name in the directory at cipher_parent."""
        if self.options.plaintext_names:
            return name, name
        full = self.names.encrypt(os.fsencode(name), self.dir_iv(cipher_parent))
        disk = self.names.hash_long(full) if len(full) > self._long_max else full
        return disk, full

    def encrypt_link(self, cipher_path: str, target: bytes) -> str:
        if self.options.plaintext_names:
            return os.fsdecode(target)
        if not target:
            return ""
        # The link's own name appears twice in the nonce path (the v2.3 quirk of §9.2).
        nonce = derive(_join(cipher_path, os.path.basename(cipher_path)), "SYMLINKIV")
        return b64_encode(self.content.aead.seal(target, _SYMLINK_AD, nonce), self.options.raw64)

    # -- listing and lookup -------------------------------------------------------------

    def listdir(self, cipher_dir: str = "", plain_dir: str | None = None) -> list[ReverseEntry]:
        """The entries of the encrypted view of one directory (virtual files included)."""
        if plain_dir is None:
            plain_dir = self.resolve(cipher_dir).plain or ""
        out: list[ReverseEntry] = []
        is_root = not cipher_dir
        hide_conf = is_root and not self.config_custom
        excluding = bool(self.excludes)
        try:
            scanned = self._scan(plain_dir)
        except OSError as e:
            raise fs_error(e, self.plain_path(plain_dir)) from None
        for entry in scanned:
            name = entry.name
            if hide_conf and name == REVERSE_CONF_NAME:
                continue
            if hide_conf and self.options.plaintext_names and name == CONF_NAME:
                continue  # would collide with the view's config (§9.3)
            plain = _join(plain_dir, name)
            if excluding and self.excludes.matches(plain):
                continue
            disk, full = self.encrypt_name(cipher_dir, name)
            cpath = _join(cipher_dir, disk)
            out.append(ReverseEntry(disk, cpath, dirent_kind(entry), plain))
            if disk != full:
                out.append(
                    ReverseEntry(
                        disk + LONGNAME_SUFFIX,
                        cpath + LONGNAME_SUFFIX,
                        "file",
                        data=full.encode(),
                        stat_from=plain,
                    )
                )
        if self.options.diriv:
            out.append(
                ReverseEntry(
                    DIRIV_NAME,
                    _join(cipher_dir, DIRIV_NAME),
                    "file",
                    data=self.dir_iv(cipher_dir),
                    stat_from=plain_dir,
                )
            )
        if is_root and self.conf_path is not None:
            out.append(ReverseEntry(CONF_NAME, CONF_NAME, "file", data=self.conf_path.read_bytes()))
        return out

    def resolve(self, cipher_path: str) -> ReverseEntry:
        """Look up a cipher path of the view (decrypting names, scanning for long names)."""
        parts = [p for p in cipher_path.split("/") if p]
        if not parts:
            return ReverseEntry("", "", "dir", plain="")
        cur_c, cur_p = "", ""
        entry: ReverseEntry | None = None
        for i, part in enumerate(parts):
            entry = self._lookup(cur_c, cur_p, part)[0]
            if i < len(parts) - 1 and entry.kind != "dir":
                raise FsError(errno.ENOTDIR, f"{cipher_path}: not a directory")
            cur_c, cur_p = entry.cipher_path, entry.plain or ""
        assert entry is not None
        return entry

    def lookup(self, directory: ReverseEntry, name: str) -> ReverseEntry:
        """The entry called `name` (a cipher name) in the view's directory `directory`.

        Raises FsError: ENOENT when there is none, EPERM when it is excluded (as gocryptfs).
        """
        return self._lookup_in(directory, name)[0]

    def lookup_stat(self, directory: ReverseEntry, name: str) -> tuple[ReverseEntry, ViewStat]:
        """`lookup` and the `stat` of what it finds, from the one lstat the lookup makes."""
        entry, st = self._lookup_in(directory, name)
        return entry, self.stat(entry) if st is None else self.stat_of(entry, st)

    def _lookup_in(self, directory: ReverseEntry, name: str) -> _Found:
        if directory.kind != "dir" or directory.plain is None:
            raise FsError(errno.ENOTDIR, f"{directory.cipher_path}: not a directory")
        if not name or "/" in name or name in (".", ".."):
            raise FsError(errno.ENOENT, f"{name!r}: no such entry in the view")
        return self._lookup(directory.cipher_path, directory.plain, name)

    def _hashable_length(self, plain_name: str) -> bool:
        """Whether a plain name is long enough for its encrypted name to be hashed (§6.7)."""
        padded = (len(os.fsencode(plain_name)) // 16 + 1) * 16
        encoded = (padded * 4 + 2) // 3 if self.options.raw64 else -(-padded // 3) * 4
        return encoded > self._long_max

    def _lookup(self, cipher_dir: str, plain_dir: str, name: str) -> _Found:
        cpath = _join(cipher_dir, name)
        if name == DIRIV_NAME and self.options.diriv:
            return ReverseEntry(name, cpath, "file", data=self.dir_iv(cipher_dir), stat_from=plain_dir), None
        if not cipher_dir and name == CONF_NAME and self.conf_path is not None:
            return ReverseEntry(name, cpath, "file", data=self.conf_path.read_bytes()), None
        if self.options.plaintext_names:
            plain_name = name
        elif is_long_name(name) or (name.endswith(LONGNAME_SUFFIX) and is_long_name(name[:-5])):
            # Long names cannot be decrypted, only found: encrypt candidates until one matches.
            base = name[: -len(LONGNAME_SUFFIX)] if name.endswith(LONGNAME_SUFFIX) else name
            try:
                candidates = [e.name for e in self._scan(plain_dir)]
            except OSError as e:
                raise fs_error(e, self.plain_path(plain_dir)) from None
            for cand in candidates:
                if not self._hashable_length(cand):
                    continue
                disk, full = self.encrypt_name(cipher_dir, cand)
                if disk == base:
                    plain = _join(plain_dir, cand)
                    if self.is_excluded(plain):
                        raise FsError(errno.EPERM, f"{cpath}: excluded from the view")
                    if base != name:
                        return ReverseEntry(name, cpath, "file", data=full.encode(), stat_from=plain), None
                    return self._real(cpath, plain)
            raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        else:
            try:
                plain_name = os.fsdecode(self.names.decrypt(name, self.dir_iv(cipher_dir)))
            except NameError_:
                raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view") from None
            # The strict base64 decoder takes canonical names only and EME is a permutation,
            # so `name` is this plain name's full encrypted name; it is only valid unhashed.
            if len(name) > self._long_max:
                raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        if not cipher_dir and plain_name == REVERSE_CONF_NAME and not self.config_custom:
            raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        plain = _join(plain_dir, plain_name)
        if self.is_excluded(plain):
            raise FsError(errno.EPERM, f"{cpath}: excluded from the view")
        return self._real(cpath, plain)

    def _real(self, cipher_path: str, plain: str) -> _Found:
        try:
            st = self.lstat_plain(plain)
        except OSError as e:
            raise fs_error(e, plain) from None
        return ReverseEntry(os.path.basename(cipher_path), cipher_path, kind_of_mode(st.st_mode), plain), st

    # -- content ------------------------------------------------------------------------

    def cipher_size(self, entry: ReverseEntry) -> int:
        if entry.data is not None:
            return len(entry.data)
        assert entry.plain is not None
        if entry.kind == "symlink":
            return len(os.fsencode(self.readlink(entry)))
        st = self.lstat_plain(entry.plain)
        if entry.kind == "file":
            return self.content.plain_to_cipher_size(st.st_size)
        return st.st_size

    def readlink(self, entry: ReverseEntry) -> str:
        assert entry.plain is not None
        return self.encrypt_link(entry.cipher_path, os.fsencode(self.readlink_plain(entry.plain)))

    def stat(self, entry: ReverseEntry) -> ViewStat:
        """stat(2) of an entry as a reverse mount shows it (§9.3).

        Real objects pass mode, owner, times and link count through with the size translated
        (§5.2; a symlink's size is the length of its encrypted target). Virtual files are
        read-only regular files holding `data`, with the owner and times of `stat_from`; the
        config passes its own stat through. Regular files report the blocks of their full
        cipher size: the view has no holes (§5.3), and tools that copy sparse files by their
        block count must not think otherwise.
        """
        try:
            if entry.data is not None:
                return self._virtual_stat(entry, entry.data)
            assert entry.plain is not None
            st = self.lstat_plain(entry.plain)
        except OSError as e:
            raise fs_error(e, entry.cipher_path or "/") from None
        return self.stat_of(entry, st)

    def stat_of(self, entry: ReverseEntry, st: os.stat_result) -> ViewStat:
        """The view's stat of a real entry from the plain object's stat `st` (also an fstat)."""
        size, blocks = st.st_size, st.st_blocks
        if stat_mod.S_ISREG(st.st_mode):
            size = self.content.plain_to_cipher_size(st.st_size)
            blocks = (size + 511) // 512
        elif stat_mod.S_ISLNK(st.st_mode):
            size = len(os.fsencode(self.readlink(entry)))  # bytes: plaintextnames keep UTF-8
        return ViewStat(
            st.st_mode, size, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, blocks, st.st_blksize,
            st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino, TAG_REAL,
        )  # fmt: skip

    def _virtual_stat(self, entry: ReverseEntry, data: bytes) -> ViewStat:
        if entry.stat_from is None:  # the config: its own stat, followed like gocryptfs does
            assert self.conf_path is not None
            st = os.stat(self.conf_path)
            return ViewStat(
                st.st_mode, st.st_size, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, st.st_blocks,
                st.st_blksize, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino,
                TAG_CONF,
            )  # fmt: skip
        st = self.lstat_plain(entry.stat_from)
        tag = TAG_DIRIV if entry.cipher_name == DIRIV_NAME else TAG_NAME_FILE
        return ViewStat(
            VIRTUAL_MODE, len(data), 1, st.st_uid, st.st_gid, 0, (len(data) + 511) // 512,
            st.st_blksize, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino, tag,
        )  # fmt: skip

    def read(self, entry: ReverseEntry, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size) of the encrypted file; computed from the plain file."""
        if entry.data is not None:
            return entry.data[offset : offset + size]
        assert entry.plain is not None
        fd = self.open_plain(entry.plain)
        try:
            return self.read_fd(entry.cipher_path, fd, offset, size)
        finally:
            os.close(fd)

    def read_fd(self, cipher_path: str, fd: int, offset: int, size: int) -> bytes:
        plain_size = os.fstat(fd).st_size
        total = self.content.plain_to_cipher_size(plain_size)
        end = min(offset + size, total)
        if offset >= end:
            return b""
        file_id = derive(cipher_path, "FILEID")
        header = make_header(file_id)
        cb = self.content.cipher_block
        out = bytearray()
        pos = offset
        if pos < HEADER_LEN:
            out += header[pos:end]
            pos = HEADER_LEN
        if pos < end:
            first = (pos - HEADER_LEN) // cb
            last = (end - 1 - HEADER_LEN) // cb
            plain = os.pread(fd, (last - first + 1) * BLOCK_SIZE, first * BLOCK_SIZE)
            b0 = derive(cipher_path, "BLOCK0IV")
            blocks = bytearray()
            for i, off in enumerate(range(0, len(plain), BLOCK_SIZE)):
                n = first + i
                blocks += self.content.encrypt_block(
                    plain[off : off + BLOCK_SIZE], n, file_id, block_nonce(b0, n)
                )
            skip = pos - (HEADER_LEN + first * cb)
            out += blocks[skip : skip + end - pos]
        return bytes(out)

    def iter_file(self, entry: ReverseEntry) -> Iterator[bytes]:
        """Stream a whole encrypted file in 1 MiB steps."""
        if entry.data is not None:
            yield entry.data
            return
        assert entry.plain is not None
        step = 256 * self.content.cipher_block
        fd = self.open_plain(entry.plain)
        try:
            total = self.content.plain_to_cipher_size(os.fstat(fd).st_size)
            pos = 0
            while pos < total:
                chunk = self.read_fd(entry.cipher_path, fd, pos, step + (HEADER_LEN if pos == 0 else 0))
                yield chunk
                pos += len(chunk)
        finally:
            os.close(fd)

    def materialize(self, dest: str | os.PathLike[str]) -> None:
        """Write the whole encrypted view into `dest` (an offline `cp -a` of a reverse mount).

        Written relative to directory fds: cipher names are longer than plain ones, so the
        copy of a deep plain tree can be deeper than PATH_MAX allows as one path.
        """
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._materialize_dir("", "", fd)
        finally:
            os.close(fd)

    def _materialize_dir(self, cdir: str, pdir: str, out: int) -> None:
        dirs: list[ReverseEntry] = []
        for e in self.listdir(cdir, pdir):
            name = e.cipher_name
            if e.kind == "dir":
                os.mkdir(name, 0o700, dir_fd=out)
                dirs.append(e)
            elif e.kind == "symlink":
                os.symlink(self.readlink(e), name, dir_fd=out)
                self._copy_times(e.plain or "", out, name)
            elif e.kind == "file":
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=out)
                with os.fdopen(fd, "wb") as f:
                    for chunk in self.iter_file(e):
                        f.write(chunk)
                    if e.plain is not None:
                        os.fchmod(fd, stat_mod.S_IMODE(self.lstat_plain(e.plain).st_mode))
                    else:  # virtual: mode and times as a mount shows them, so both copies agree
                        os.fchmod(fd, stat_mod.S_IMODE(self.stat(e).mode))
                if e.plain is not None:
                    self._copy_times(e.plain, out, name)
                else:
                    st = self.stat(e)
                    os.utime(name, ns=(st.atime_ns, st.mtime_ns), dir_fd=out, follow_symlinks=False)
        for e in dirs:
            assert e.plain is not None
            sub = os.open(
                e.cipher_name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=out
            )
            try:
                self._materialize_dir(e.cipher_path, e.plain, sub)
                os.fchmod(sub, stat_mod.S_IMODE(self.lstat_plain(e.plain).st_mode))
            finally:
                os.close(sub)
            self._copy_times(e.plain, out, e.cipher_name)

    def _copy_times(self, plain: str, out: int, name: str) -> None:
        st = self.lstat_plain(plain)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=out, follow_symlinks=False)

    # -- the view as a Tree (vaultsh.vault.tree): plain paths, the real files behind them ----

    @property
    def root(self) -> Path:
        return self.plaindir

    def node(self, plain: str) -> TreeNode:
        if not plain:
            return TreeNode("", "", "dir")
        where = "/" + plain
        if plain == REVERSE_CONF_NAME and not self.config_custom:
            raise FsError(errno.ENOENT, f"{where}: the config is shown as {CONF_NAME} in the view")
        if self.is_excluded(plain):
            raise FsError(errno.EPERM, f"{where}: excluded from the view")
        try:
            st = self.lstat_plain(plain)
        except OSError as e:
            raise FsError(e.errno or errno.EIO, f"{where}: {e.strerror or e}") from None
        cipher = ""
        for part in plain.split("/"):
            cipher = _join(cipher, self.encrypt_name(cipher, part)[0])
        return TreeNode(plain, cipher, kind_of_mode(st.st_mode))

    def entry(self, node: TreeNode) -> ReverseEntry:
        """The view's entry of a real object of the tree."""
        return ReverseEntry(node.cipher_name, node.cipher_path, node.kind, node.plain)

    def children(self, directory: TreeNode, *, include_bad: bool = False) -> list[TreeNode]:
        # Every plain name has an encrypted one: nothing is undecryptable, and the view's own
        # files (diriv, .name files, config) have no plain object.
        return [
            TreeNode(e.plain, e.cipher_path, e.kind)
            for e in self.listdir(directory.cipher_path, directory.plain)
            if e.plain is not None
        ]

    def plain_stat(self, node: TreeNode) -> PlainStat:
        try:
            st = self.lstat_plain(node.plain)
        except OSError as e:
            raise fs_error(e, "/" + node.plain) from None
        return PlainStat(
            mode=st.st_mode, size=st.st_size, mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns,
            ctime_ns=st.st_ctime_ns, nlink=st.st_nlink, uid=st.st_uid, gid=st.st_gid,
            ino=st.st_ino, cipher_size=self.stat_of(self.entry(node), st).size,
        )  # fmt: skip

    def plain_link(self, node: TreeNode) -> str:
        try:
            return self.readlink_plain(node.plain)
        except OSError as e:
            raise fs_error(e, "/" + node.plain) from None

    def plain_chunks(
        self, node: TreeNode, on_bad: Callable[[int, str], None] | None = None
    ) -> Iterator[bytes]:
        # A plain file has no blocks to be damaged: `on_bad` is never called.
        return regular_file_chunks(lambda: self.open_plain(node.plain), "/" + node.plain)

    def plain_head(self, node: TreeNode, limit: int) -> bytes:
        try:
            return self._at(node.plain, read_regular, limit)
        except OSError as e:
            raise fs_error(e, "/" + node.plain) from None

    def encrypt_path(self, plain: str) -> str:
        return self.node(plain).cipher_path

    def decrypt_path(self, cipher_path: str) -> str:
        found = self.resolve(cipher_path)
        if found.plain is None:
            raise UsageError(f"{cipher_path}: a file the view makes up, with no plain path")
        return found.plain

    def info_lines(self) -> list[str]:
        return [f"{'Mode:':<19}reverse (read-only encrypted view of the plain files)"]

    def cipher_entries(
        self,
        directory: TreeNode,
        *,
        first_batch: int = FIRST_BATCH,
        batch: int = BATCH,
        cancelled: Cancelled = lambda: False,
    ) -> Iterator[list[CipherEntry]]:
        # Exactly what a reverse mount lists (`listdir`): encrypted names, the derived diriv,
        # the virtual `.name` files and, in the root, the config as gocryptfs.conf (§9.3).
        try:
            found = self.listdir(directory.cipher_path, directory.plain)
        except OSError as e:
            raise VaultError(f"/{directory.plain}: cannot list: {e.strerror or e}") from None
        found.sort(key=lambda e: e.cipher_name)
        for chunk in chunks(found, first_batch, batch, cancelled):
            yield [self._cipher_entry(e) for e in chunk]

    def _cipher_entry(self, ve: ReverseEntry) -> CipherEntry:
        if ve.data is not None:
            if ve.stat_from is None:
                role = ROLE_CONF
            elif ve.cipher_name == DIRIV_NAME:
                role = ROLE_DIRIV
            else:
                role = ROLE_SIDECAR
            entry = CipherEntry(ve.cipher_name, "file", role, cipher_size=len(ve.data))
            with contextlib.suppress(OSError, VaultError):
                entry.mtime_ns = self.stat(ve).mtime_ns
            return entry
        assert ve.plain is not None
        entry = CipherEntry(ve.cipher_name, ve.kind, ROLE_OBJECT, plain_name=ve.plain.rpartition("/")[2])
        with contextlib.suppress(OSError):  # gone since the listing: shown with what is known
            st = self.lstat_plain(ve.plain)
            entry.mtime_ns = st.st_mtime_ns
            entry.plain_size = entry.cipher_size = st.st_size
            if ve.kind == "file":
                entry.cipher_size = self.content.plain_to_cipher_size(st.st_size)
            elif ve.kind == "symlink":
                entry.cipher_size = self.cipher_size(ve)
        return entry

    def watch_dir(self, directory: TreeNode) -> Path:
        return self.plain_path(directory.plain)  # the view changes with its plain files

    def xray(self, directory: TreeNode, entry: CipherEntry) -> XRay:
        # Computed from the plain file, as the view serves it (§9.2, §9.3).
        facts = [Fact("In view", quote_name(entry.cipher_name))]
        try:
            ve = self.lookup(self.entry(directory), entry.cipher_name)
        except VaultError as e:  # gone or excluded since it was listed
            return [[*facts, Fact("Error", str(e), "error")]]
        if ve.data is not None:
            return [facts + self._virtual_facts(entry, ve.data)]
        cipher_dir = directory.cipher_path
        _, full = self.encrypt_name(cipher_dir, entry.plain_name or "")
        facts += name_facts(
            self.options, entry, full, lambda: self.dir_iv(cipher_dir).hex() + "  (derived, §9.2)"
        )
        try:
            if entry.kind == "file":
                size = self.cipher_size(ve)
                head = self.read(ve, 0, HEADER_LEN + XRAY_BLOCKS * self.content.cipher_block)
                ivs = "file ID and block 0 nonce derived from the path: FILEID, BLOCK0IV (§9.2)"
                facts.append(Fact("IVs", ivs))
                return [facts, content_facts(self.content, self.options, size, head, "in the view")]
            if entry.kind == "dir" and self.options.diriv:
                facts.append(Fact("Own IV", self.dir_iv(ve.cipher_path).hex() + "  (its gocryptfs.diriv)"))
            elif entry.kind == "symlink":
                stored = self.readlink(ve)
                facts.append(
                    Fact("Target", f"{len(stored)} chars: AES-SIV-sealed target, base64 (§7.1, §9.2)")
                )
        except OSError as e:
            facts.append(Fact("Error", e.strerror or str(e), "error"))
        return [facts]

    def _virtual_facts(self, entry: CipherEntry, data: bytes) -> list[Fact]:
        """The x-ray of a file the view makes up: the diriv, a `.name` file or the config."""
        if entry.role == ROLE_DIRIV:
            role = 'directory IV, derived: SHA-256(path ‖ 0 ‖ "DIRIV")[0:16] (§9.2); virtual file'
            return [Fact("Role", role), Fact("IV", data.hex())]
        if entry.role == ROLE_SIDECAR:
            role = "virtual long-name sidecar: the full encrypted name of a hashed entry (§6.7)"
            names = Fact("Names", entry.owner_name or "")
            return [Fact("Role", role), names, Fact("Content", f"{len(data)} base64 characters")]
        facts = [Fact("Role", "the folder's .gocryptfs.reverse.conf, shown as gocryptfs.conf (§9.3)")]
        try:
            return facts + config_facts(parse_config(data).info_lines())
        except VaultError as e:
            return [*facts, Fact("Error", str(e), "error")]

    def cipher_chunks(self, directory: TreeNode, cipher_name: str) -> Iterator[bytes]:
        found = self.lookup(self.entry(directory), cipher_name)
        if found.kind != "file":
            raise FsError(errno.EINVAL, f"/{found.cipher_path}: not a regular file")
        return self.iter_file(found)
