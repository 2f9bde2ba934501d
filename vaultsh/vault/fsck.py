"""Offline integrity check of a cipher directory: typed findings, and moving damaged items out."""

# Longer than 600 lines on purpose: Checker walks the tree once, and each check (diriv, names
# and long-name sidecars, file content, symlinks, xattrs) is a method that shares the walk's
# open directory, seen inodes and counts; quarantine only moves what those findings name.

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat as stat_mod
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.conflicts import find_origin
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN, parse_header
from vaultsh.vault.errors import CorruptionError, FsError, UsageError
from vaultsh.vault.file import CHUNK_BLOCKS
from vaultsh.vault.names import (
    DIRIV_LEN,
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    MAX_NAME_FILE,
    XATTR_PREFIX,
    ZERO_IV,
    NameError_,
    is_long_name,
    is_name_file,
    read_regular,
)
from vaultsh.vault.vault import Vault

# Never follow a link or wait on a FIFO someone planted in the cipher dir.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = _OPEN_FLAGS | os.O_DIRECTORY
_RMDIR_PREFIX = DIRIV_NAME + ".rmdir."
_CONF_BACKUP = re.compile(re.escape(CONF_NAME) + r"\.bak(?:\.\d+)?")
# What an encrypted name can be made of (§6.4); anything else was named by someone else.
_CIPHER_NAME = re.compile(r"[A-Za-z0-9_=-]+")
MAX_BLOCK_FINDINGS = 64  # per file: a file this damaged is named, not listed block by block
# The plain name of the file an import writes before renaming it into place.
IMPORT_TEMP_NAME = re.compile(r"\.vaultsh-[0-9a-f]{16}\.part")


class Kind(StrEnum):
    """What is wrong. The values are stable: `--json` output and scripts use them."""

    CORRUPT_NAME = "corrupt-name"  # an encrypted-looking name that does not decrypt
    CONFLICT_COPY = "conflict-copy"  # a sync tool's renamed copy of an entry beside it
    STRAY_PLAINTEXT = "stray-plaintext"  # not made by the vault: its name (and content) is readable
    RMDIR_LEFTOVER = "rmdir-leftover"  # the parked diriv of an interrupted rmdir (§8.3)
    DIRIV_MISSING = "diriv-missing"
    DIRIV_BAD = "diriv-bad"  # wrong size, all zeros, or not a regular file (§6.5)
    NAME_FILE_MISSING = "name-file-missing"  # a long name without its .name sidecar (§6.7)
    NAME_FILE_BAD = "name-file-bad"  # a sidecar that is unreadable or does not match its hash
    NAME_FILE_ORPHAN = "name-file-orphan"  # a sidecar whose object is gone
    HEADER_BAD = "header-bad"  # §5.1
    BLOCK_BAD = "block-bad"  # a content block fails authentication (§5.1)
    SIZE_INVALID = "size-invalid"  # no ciphertext has this size (§5.2)
    SYMLINK_BAD = "symlink-bad"  # the target does not decrypt (§7.1)
    XATTR_NAME_BAD = "xattr-name-bad"  # §7.2
    XATTR_VALUE_BAD = "xattr-value-bad"
    CONFIG_BACKUP = "config-backup"  # gocryptfs.conf.bak: an old password still opens the vault
    UNREADABLE = "unreadable"  # the check itself could not read something
    DUPLICATE_NAME = "duplicate-name"  # two cipher entries decrypt to one plain name (§6.7 alias)
    IMPORT_LEFTOVER = "import-leftover"  # the temporary file of an import that was stopped


# Entries with a bad name whose content is still checked (strays are not vault content).
_CONTENT_STILL_CHECKED = frozenset(
    {Kind.CORRUPT_NAME, Kind.CONFLICT_COPY, Kind.NAME_FILE_MISSING, Kind.NAME_FILE_BAD}
)
# Findings about an item that is of no use where it is; --quarantine moves these out.
MOVABLE = frozenset(
    {
        Kind.CORRUPT_NAME,
        Kind.CONFLICT_COPY,
        Kind.STRAY_PLAINTEXT,
        Kind.RMDIR_LEFTOVER,
        Kind.DIRIV_MISSING,
        Kind.DIRIV_BAD,
        Kind.NAME_FILE_MISSING,
        Kind.NAME_FILE_BAD,
        Kind.NAME_FILE_ORPHAN,
        Kind.HEADER_BAD,
        Kind.BLOCK_BAD,
        Kind.SIZE_INVALID,
        Kind.SYMLINK_BAD,
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where on disk (relative to the cipher dir), where in the vault if known."""

    kind: Kind
    cipher_path: str
    plain_path: str | None
    detail: str
    block: int | None = None

    def as_record(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "cipher_path": self.cipher_path,
            "plain_path": self.plain_path,
            "block": self.block,
            "detail": self.detail,
        }


@dataclass
class Counts:
    """What a check has looked at so far."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    others: int = 0
    bytes: int = 0

    @property
    def objects(self) -> int:
        return self.files + self.dirs + self.symlinks + self.others


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _entry_kind(entry: os.DirEntry[str]) -> str:
    """'file', 'dir', 'symlink' or 'other' from the entry itself (lstat semantics)."""
    try:
        if entry.is_symlink():
            return "symlink"
        if entry.is_file(follow_symlinks=False):
            return "file"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
    except OSError:
        pass
    return "other"


def _read_small(dfd: int, name: str, limit: int) -> bytes | str:
    """Up to `limit` bytes of a regular file in a directory, or why it cannot be read."""
    try:
        return read_regular(name, limit, dir_fd=dfd)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symlink, not a file"
        return e.strerror or str(e)


class Checker:
    """Checks a vault's cipher tree, yielding findings as it goes (nothing is changed).

    It finds what `gocryptfs -fsck` finds (names that do not decrypt, bad dirivs, headers,
    blocks, symlinks and xattrs) and what it cannot see: sidecars without objects and
    objects without sidecars, sync-conflict copies, files that were never encrypted,
    impossible cipher sizes, interrupted rmdirs and a gocryptfs.conf.bak.
    """

    def __init__(self, vault: Vault, progress: Callable[[Counts], None] | None = None) -> None:
        self.vault = vault
        self.counts = Counts()
        self._progress = progress
        self._codec = vault.content
        self._seen_inodes: set[tuple[int, int]] = set()
        self._buf = bytearray(CHUNK_BLOCKS * BLOCK_SIZE)
        self._plain_names = vault.options.plaintext_names

    # -- the walk ---------------------------------------------------------------------------

    def run(self, path: str = "") -> Generator[Finding, None, None]:
        """Check the vault, or the subtree at plain `path`."""
        vault = self.vault
        top = vault.cipher_path(path) if path else vault.cipherdir
        rel = os.path.relpath(top, vault.cipherdir) if path else ""
        plain = "/".join(p for p in path.split("/") if p)
        try:
            st = os.lstat(top)
        except OSError as e:
            raise FsError(e.errno or errno.ENOENT, f"{path or '/'}: {e.strerror}") from None
        if not stat_mod.S_ISDIR(st.st_mode):
            try:
                dfd = os.open(top.parent, _DIR_FLAGS)
            except OSError as e:
                raise FsError(e.errno or errno.EIO, f"{top.parent}: {e.strerror}") from None
            try:
                kind = "file" if stat_mod.S_ISREG(st.st_mode) else "symlink"
                if stat_mod.S_ISLNK(st.st_mode) or stat_mod.S_ISREG(st.st_mode):
                    yield from self._check_object(dfd, top.name, kind, rel, plain)
            finally:
                os.close(dfd)
            return
        try:
            fd = os.open(top, _DIR_FLAGS)
        except OSError as e:
            raise FsError(e.errno or errno.EIO, f"{top}: {e.strerror}") from None
        # One open fd per level of the current path: children are opened relative to their
        # parent, so no path is resolved twice and no planted symlink is followed.
        stack: list[tuple[int, Iterator[tuple[str, str, str | None]]]] = [(fd, iter(()))]
        try:
            findings, subdirs = self._scan_dir(fd, rel, plain)
            stack[-1] = (fd, iter(subdirs))
            yield from findings
            while stack:
                dfd, pending = stack[-1]
                nxt = next(pending, None)
                if nxt is None:
                    os.close(stack.pop()[0])
                    continue
                name, crel, cplain = nxt
                try:
                    cfd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                except OSError as e:
                    yield Finding(Kind.UNREADABLE, crel, cplain, f"cannot open directory: {e.strerror}")
                    continue
                stack.append((cfd, iter(())))
                findings, subdirs = self._scan_dir(cfd, crel, cplain)
                stack[-1] = (cfd, iter(subdirs))
                yield from findings
        finally:
            # Left early: a cancel (an exception from the progress callback) or an abandoned walk.
            for dfd, _pending in stack:
                os.close(dfd)

    def _tick(self) -> None:
        if self._progress is not None:
            self._progress(self.counts)

    def _diriv(self, dfd: int, rel: str, plain: str | None, out: list[Finding]) -> bytes | None:
        """This directory's name IV, or None (after a finding) when it has none usable."""
        if self._plain_names:
            return None
        if not self.vault.options.diriv:
            return ZERO_IV
        raw = _read_small(dfd, DIRIV_NAME, DIRIV_LEN + 1)
        if raw == "missing":
            out.append(
                Finding(
                    Kind.DIRIV_MISSING,
                    rel,
                    plain,
                    "gocryptfs.diriv is missing: names here cannot be decrypted",
                )
            )
            return None
        if isinstance(raw, str):
            out.append(Finding(Kind.DIRIV_BAD, rel, plain, f"{DIRIV_NAME}: {raw}"))
            return None
        if len(raw) != DIRIV_LEN:
            size = f"{len(raw)}{'+' if len(raw) > DIRIV_LEN else ''}"
            out.append(Finding(Kind.DIRIV_BAD, rel, plain, f"gocryptfs.diriv has {size} bytes, want 16"))
            return None
        if raw == ZERO_IV:
            out.append(Finding(Kind.DIRIV_BAD, rel, plain, "gocryptfs.diriv is all zeros"))
            return None
        return raw

    def _scan_dir(
        self, dfd: int, rel: str, plain: str | None
    ) -> tuple[list[Finding], list[tuple[str, str, str | None]]]:
        """Findings of one directory and its non-directory entries; its subdirectories to visit."""
        out: list[Finding] = []
        self.counts.dirs += 1
        try:
            with os.scandir(dfd) as it:
                entries = {e.name: _entry_kind(e) for e in it}
        except OSError as e:
            out.append(Finding(Kind.UNREADABLE, rel, plain, f"cannot list directory: {e.strerror}"))
            return out, []
        self._check_xattrs(dfd, rel, plain, out)
        iv = self._diriv(dfd, rel, plain, out)
        is_root = rel == ""
        names = self._decrypt_names(dfd, rel, plain, entries, iv, is_root, out)
        subdirs: list[tuple[str, str, str | None]] = []
        for name, kind in entries.items():
            if name not in names:
                continue  # config, diriv, sidecar, or a stray already reported
            child_plain = names[name]
            crel = _join(rel, name)
            if kind == "dir":
                subdirs.append((name, crel, child_plain))
            else:
                out.extend(self._check_object(dfd, name, kind, crel, child_plain))
        self._tick()
        return out, subdirs

    def _decrypt_names(
        self,
        dfd: int,
        rel: str,
        plain: str | None,
        entries: dict[str, str],
        iv: bytes | None,
        is_root: bool,
        out: list[Finding],
    ) -> dict[str, str | None]:
        """Plain paths of the entries to check further (None: name unknown); reports bad names."""
        vault = self.vault
        result: dict[str, str | None] = {}
        if self._plain_names:
            for name in entries:
                if is_root and name == CONF_NAME:
                    continue
                if is_root and _CONF_BACKUP.fullmatch(name):
                    out.append(self._backup_finding(name))
                    continue
                origin = find_origin(name, entries, loose=False)
                if origin is not None:
                    out.append(
                        Finding(
                            Kind.CONFLICT_COPY,
                            _join(rel, name),
                            _join(plain or "", name),
                            f"{origin.tool} conflict copy of {origin.original}",
                        )
                    )
                result[name] = _join(plain or "", name)
            out.extend(_same_plain_names(rel, result))
            return result
        fulls: list[str] = []
        disks: list[str] = []
        failed: dict[str, str] = {}  # cipher name -> why it is not a vault name
        for name in entries:
            if name.startswith("gocryptfs."):
                if is_root and name == CONF_NAME:
                    continue
                if is_root and _CONF_BACKUP.fullmatch(name):
                    out.append(self._backup_finding(name))
                    continue
                if name == DIRIV_NAME:
                    continue
                if name.startswith(_RMDIR_PREFIX):
                    out.append(
                        Finding(
                            Kind.RMDIR_LEFTOVER,
                            _join(rel, name),
                            None,
                            "left by an interrupted rmdir (§8.3); safe to delete",
                        )
                    )
                    continue
                if is_name_file(name):
                    if name[: -len(LONGNAME_SUFFIX)] not in entries:
                        failed[name] = "orphan"
                    continue
                if is_long_name(name):
                    raw = _read_small(dfd, name + LONGNAME_SUFFIX, MAX_NAME_FILE + 1)
                    if isinstance(raw, str):
                        failed[name] = "missing" if raw == "missing" else f"sidecar {raw}"
                        continue
                    why = _sidecar_problem(raw)
                    if why is None and vault.names.hash_long(raw.decode("ascii")) != name:
                        why = "sidecar does not match the hashed name"
                    if why is not None:
                        failed[name] = why
                        continue
                    fulls.append(raw.decode("ascii"))
                    disks.append(name)
                    continue
            fulls.append(name)
            disks.append(name)
        if iv is not None and fulls:
            for disk, res in zip(disks, vault.names.decrypt_many(fulls, iv), strict=True):
                if isinstance(res, NameError_):
                    failed[disk] = str(res)
                else:
                    result[disk] = _join(plain or "", res.decode("utf-8", "surrogateescape"))
        elif iv is None:
            # No usable diriv: names cannot be known, but contents can still be checked.
            for disk in disks:
                result[disk] = None
        out.extend(_same_plain_names(rel, result))
        for name, why in failed.items():
            finding = self._bad_name(dfd, rel, name, entries, result, why)
            out.append(finding)
            if finding.kind in _CONTENT_STILL_CHECKED and not is_name_file(name):
                result[name] = None  # the name is unknown, the content can still be checked
        return result

    def _backup_finding(self, name: str) -> Finding:
        return Finding(
            Kind.CONFIG_BACKUP,
            name,
            None,
            "a backup config: its old password still unlocks the vault; delete it once the current one works",
        )

    def _bad_name(
        self,
        dfd: int,
        rel: str,
        name: str,
        entries: dict[str, str],
        good: dict[str, str | None],
        why: str,
    ) -> Finding:
        """Say what an entry that is not a vault name most likely is."""
        crel = _join(rel, name)
        origin = find_origin(name, entries)
        if origin is not None:
            of = good.get(origin.original)
            what = f"{of} (cipher name {origin.original})" if of else origin.original
            return Finding(Kind.CONFLICT_COPY, crel, None, f"{origin.tool} conflict copy of {what}")
        if is_name_file(name):
            return Finding(Kind.NAME_FILE_ORPHAN, crel, None, "long-name sidecar without its object (§6.7)")
        if is_long_name(name):
            if why == "missing":
                return Finding(
                    Kind.NAME_FILE_MISSING,
                    crel,
                    None,
                    "long name without its .name sidecar: its name is lost",
                )
            return Finding(Kind.NAME_FILE_BAD, crel, None, f"long name: {why}")
        if not _CIPHER_NAME.fullmatch(name) and not self._looks_encrypted(dfd, name, entries[name]):
            return Finding(
                Kind.STRAY_PLAINTEXT,
                crel,
                None,
                "not made by the vault: its name and content are readable by anyone who can see "
                "the cipher dir (privacy leak)",
            )
        return Finding(Kind.CORRUPT_NAME, crel, None, f"name does not decrypt: {why}")

    def _looks_encrypted(self, dfd: int, name: str, kind: str) -> bool:
        """Whether content is the vault's own (renamed by hand) rather than a plain stray."""
        if kind == "dir":
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError:
                return False
            try:
                return not isinstance(_read_small(sub, DIRIV_NAME, DIRIV_LEN), str)
            finally:
                os.close(sub)
        if kind != "file":
            return False
        head = _read_small(dfd, name, HEADER_LEN)
        if isinstance(head, str) or len(head) < HEADER_LEN:
            return False
        try:
            parse_header(head, name)
        except CorruptionError:
            return False
        return True

    # -- objects ----------------------------------------------------------------------------

    def _check_object(self, dfd: int, name: str, kind: str, rel: str, plain: str | None) -> Iterator[Finding]:
        if kind == "file":
            self.counts.files += 1
            yield from self._check_file(dfd, name, rel, plain)
        elif kind == "symlink":
            self.counts.symlinks += 1
            yield from self._check_symlink(dfd, name, rel, plain)
        else:
            self.counts.others += 1  # FIFOs, sockets, devices are stored as themselves (§7.3)
        self._tick()

    def _check_symlink(self, dfd: int, name: str, rel: str, plain: str | None) -> Iterator[Finding]:
        try:
            stored = os.readlink(name, dir_fd=dfd)
        except OSError as e:
            yield Finding(Kind.UNREADABLE, rel, plain, f"cannot read symlink: {e.strerror}")
            return
        if not self._plain_names:
            try:
                self.vault.decrypt_link(stored, rel)
            except CorruptionError:
                yield Finding(Kind.SYMLINK_BAD, rel, plain, "symlink target does not decrypt")
        out: list[Finding] = []
        self._check_xattrs(_SymlinkAt(dfd, name), rel, plain, out)
        yield from out

    def _check_file(self, dfd: int, name: str, rel: str, plain: str | None) -> Iterator[Finding]:
        try:
            fd = os.open(name, _OPEN_FLAGS, dir_fd=dfd)
        except OSError as e:
            yield Finding(Kind.UNREADABLE, rel, plain, f"cannot open: {e.strerror}")
            return
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                return  # replaced since the listing; not ours to judge
            out: list[Finding] = []
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in self._seen_inodes:
                    return  # a hard link of a file already checked
                self._seen_inodes.add(key)
            self.counts.bytes += st.st_size
            self._check_content(fd, st.st_size, rel, plain, out)
            self._check_xattrs(fd, rel, plain, out)
            yield from out
        except OSError as e:
            yield Finding(Kind.UNREADABLE, rel, plain, f"cannot read: {e.strerror}")
        finally:
            os.close(fd)

    def _check_content(self, fd: int, size: int, rel: str, plain: str | None, out: list[Finding]) -> None:
        codec = self._codec
        if size == 0:
            return
        if size < HEADER_LEN:
            out.append(
                Finding(
                    Kind.SIZE_INVALID,
                    rel,
                    plain,
                    f"{size} byte{'s' if size > 1 else ''}: shorter than the 18-byte header "
                    "(gocryptfs shows it as empty)",
                )
            )
            return
        cb = codec.cipher_block
        span = CHUNK_BLOCKS * cb
        # Header and first run in one read: most files are small, and a syscall is dear.
        head = os.pread(fd, HEADER_LEN + span, 0)
        try:
            file_id = parse_header(head, "header")
        except CorruptionError as e:
            out.append(Finding(Kind.HEADER_BAD, rel, plain, str(e).removeprefix("header: ")))
            return
        body = size - HEADER_LEN
        tail = body % cb
        if 0 < tail <= codec.overhead:
            last = body // cb
            out.append(
                Finding(
                    Kind.SIZE_INVALID,
                    rel,
                    plain,
                    f"last block is {tail} bytes, too short to hold data (truncated file?)",
                    last,
                )
            )
            body -= tail  # the rest is still checked
        bad: list[int] = []

        def on_bad(block: int, _why: str) -> None:
            bad.append(block)

        for first in range(0, body, span):
            if first == 0:
                data = head[HEADER_LEN : HEADER_LEN + body]
            else:
                data = os.pread(fd, min(span, body - first), HEADER_LEN + first)
            if not data:
                break
            codec.decrypt_into_salvaging(data, first // cb, file_id, self._buf, on_bad, rel)
        for block in bad[:MAX_BLOCK_FINDINGS]:
            out.append(Finding(Kind.BLOCK_BAD, rel, plain, f"block {block} fails authentication", block))
        if len(bad) > MAX_BLOCK_FINDINGS:
            more = len(bad) - MAX_BLOCK_FINDINGS
            out.append(Finding(Kind.BLOCK_BAD, rel, plain, f"and {more} more damaged blocks"))

    def _check_xattrs(
        self, target: int | _SymlinkAt, rel: str, plain: str | None, out: list[Finding]
    ) -> None:
        """Encrypted xattrs (§7.2): every name and value must decrypt."""
        try:
            if isinstance(target, _SymlinkAt):
                names = os.listxattr(target.path, follow_symlinks=False)
            else:
                names = os.listxattr(target)
        except OSError:
            return  # a filesystem without xattrs has none to check
        vault = self.vault
        for disk in names:
            if not disk.startswith(XATTR_PREFIX):
                continue
            try:
                vault.xattr_names.decrypt_xattr_name(disk)
            except NameError_:
                out.append(Finding(Kind.XATTR_NAME_BAD, rel, plain, f"xattr name {disk!r} does not decrypt"))
                continue
            try:
                if isinstance(target, _SymlinkAt):
                    value = os.getxattr(target.path, disk, follow_symlinks=False)
                else:
                    value = os.getxattr(target, disk)
                vault.decrypt_xattr_value(value, rel)
            except CorruptionError:
                out.append(
                    Finding(Kind.XATTR_VALUE_BAD, rel, plain, f"value of xattr {disk!r} does not decrypt")
                )
            except OSError as e:
                out.append(Finding(Kind.UNREADABLE, rel, plain, f"xattr {disk!r}: {e.strerror}"))


class _SymlinkAt:
    """A symlink named relative to an open directory, for the xattr calls that lack dir_fd."""

    def __init__(self, dfd: int, name: str) -> None:
        self.path = f"/proc/self/fd/{dfd}/{name}"


def _same_plain_names(rel: str, result: dict[str, str | None]) -> Iterator[Finding]:
    """Entries that share a plain name with another (each reported), and import leftovers."""
    by_plain: dict[str, list[str]] = {}
    for disk, plain in result.items():
        if plain is not None:
            by_plain.setdefault(plain, []).append(disk)
    for plain, disks in by_plain.items():
        if IMPORT_TEMP_NAME.fullmatch(plain.rpartition("/")[2]):
            detail = "an import's temporary file: left over unless one runs (the next import here removes it)"
            yield Finding(Kind.IMPORT_LEFTOVER, _join(rel, disks[0]), plain, detail)
        if len(disks) < 2:
            continue
        for disk in disks:
            others = ", ".join(d for d in disks if d != disk)
            detail = f"has the same plain name as {others}; export skips both"
            yield Finding(Kind.DUPLICATE_NAME, _join(rel, disk), plain, detail)


def _sidecar_problem(raw: bytes) -> str | None:
    if not raw or len(raw) > MAX_NAME_FILE:
        return f"sidecar has a bad size ({len(raw)} bytes)"
    try:
        raw.decode("ascii")
    except UnicodeDecodeError:
        return "sidecar is not ASCII"
    return None


def check(
    vault: Vault, path: str = "", progress: Callable[[Counts], None] | None = None
) -> Generator[Finding, None, None]:
    """Findings of the vault (or the subtree at plain `path`), in walk order."""
    return Checker(vault, progress).run(path)


def measure(vault: Vault, path: str = "") -> Counts:
    """Objects and cipher bytes below `path`, cheaply (no decryption), for a progress total."""
    top = vault.cipher_path(path) if path else vault.cipherdir
    counts = Counts()
    todo = [str(top)]
    while todo:
        d = todo.pop()
        counts.dirs += 1
        with contextlib.suppress(OSError), os.scandir(d) as it:
            for e in it:
                kind = _entry_kind(e)
                if kind == "dir":
                    todo.append(e.path)
                elif kind == "file":
                    if e.name in (DIRIV_NAME, CONF_NAME) or is_name_file(e.name):
                        continue
                    counts.files += 1
                    with contextlib.suppress(OSError):
                        counts.bytes += e.stat(follow_symlinks=False).st_size
                else:
                    counts.symlinks += 1
    return counts


# -- quarantine -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moved:
    """One item --quarantine moved (or could not move: `error`)."""

    cipher_path: str
    dest: Path
    error: str | None = None


def check_quarantine_dir(vault: Vault, dest: Path) -> Path:
    """A target dir for items taken out of the vault, as an absolute path; refused inside it."""
    real_dest = Path(os.path.realpath(dest))
    real_vault = Path(os.path.realpath(vault.cipherdir))
    if real_dest == real_vault or real_vault in real_dest.parents:
        raise UsageError(f"{dest}: the target directory must be outside the vault {vault.cipherdir}")
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise UsageError(f"{dest}: exists and is not a directory")
    return real_dest


def quarantine(vault: Vault, findings: list[Finding], dest: Path) -> list[Moved]:
    """Move the damaged items out of the vault to `dest`, keeping their relative cipher paths.

    A long-name object takes its .name sidecar along; an item below a moved directory moves
    with it. Nothing in `dest` is ever replaced.
    """
    target_root = check_quarantine_dir(vault, dest)
    paths = sorted({f.cipher_path for f in findings if f.kind in MOVABLE and f.cipher_path})
    moved: list[Moved] = []
    gone: list[str] = []
    for rel in paths:
        if any(rel.startswith(g + "/") for g in gone):
            continue
        items = [rel]
        name = rel.rpartition("/")[2]
        if is_long_name(name):
            items.append(rel + LONGNAME_SUFFIX)
        for item in items:
            src = vault.cipherdir / item
            if not os.path.lexists(src):
                continue
            to = target_root / item
            try:
                _move(src, to)
            except OSError as e:
                moved.append(Moved(item, to, e.strerror or str(e)))
                continue
            moved.append(Moved(item, to))
        gone.append(rel)
    return moved


def _move(src: Path, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.path.lexists(to):
        raise FileExistsError(errno.EEXIST, f"{to} already exists in the quarantine")
    try:
        os.rename(src, to)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    # Another filesystem: copy (links as links), then remove the original.
    st = os.lstat(src)
    if stat_mod.S_ISDIR(st.st_mode):
        shutil.copytree(src, to, symlinks=True)
        shutil.rmtree(src)
    elif stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode):
        shutil.copy2(src, to, follow_symlinks=False)
        os.unlink(src)
    else:
        raise OSError(errno.EXDEV, f"{src}: a special file cannot be moved to another filesystem")
