"""Streaming export (decrypt to a plain tree) and import (encrypt a plain tree) with progress."""

# Longer than 600 lines on purpose: export and import are mirror images that share one job
# (progress, cancellation, report), one set of refusals (a destination inside the vault or its
# mount, a source that holds the target), the free-space check and the pruning of what a
# cancelled run created; split apart, each half would need the other's private pieces.

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import secrets
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vaultsh.mount_protocol import fuse_mounts_of
from vaultsh.vault.bulk import decrypt_to
from vaultsh.vault.content import HEADER_LEN
from vaultsh.vault.core import split_path
from vaultsh.vault.errors import FsError, VaultError, fs_error, short_path
from vaultsh.vault.fsck import IMPORT_TEMP_NAME
from vaultsh.vault.names import DIRIV_NAME, is_name_file
from vaultsh.vault.vault import DirEntry, PlainStat, Vault, kind_of_mode

CHUNK = 1 << 20  # 1 MiB: big enough for throughput, small enough to keep memory flat

Progress = Callable[[int], None]
"""Called with the number of plaintext bytes just processed."""


class Cancelled(Exception):
    """The caller asked to stop; what was finished stays, nothing half-written does."""


@dataclass
class TransferReport:
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # With force_decode: (path, block number, why) of each damaged block written as zeros.
    damaged: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class _Job:
    """The running state of one transfer."""

    progress: Progress | None
    cancelled: Callable[[], bool] | None
    processes: int = 1
    report: TransferReport = field(default_factory=TransferReport)
    force_decode: bool = False

    def step(self, n: int) -> None:
        self.report.bytes += n
        if self.progress is not None:
            self.progress(n)
        if self.cancelled is not None and self.cancelled():
            raise Cancelled()

    def fail(self, path: str, why: str) -> None:
        self.report.failed.append((path, why))

    def count_file(self) -> None:
        self.report.files += 1


def _tmp_name() -> str:
    """A short temporary name: the final name may already be at the 255-byte limit."""
    return f".vaultsh-{secrets.token_hex(8)}.part"


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


# Local trees are walked relative to directory descriptors as well: a plain tree may be deeper
# than PATH_MAX allows as one path (mkdir -p makes such trees), and a symlink met on the way
# is copied as a symlink, never entered.
_DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _tree_files(dir_fd: int, skip: Callable[[str], bool]) -> Iterator[os.stat_result]:
    """lstat of every regular file below an open directory (errors are skipped)."""
    try:
        with os.scandir(dir_fd) as it:
            entries = list(it)
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                sub = os.open(e.name, _DIR_READ, dir_fd=dir_fd)
                try:
                    yield from _tree_files(sub, skip)
                finally:
                    os.close(sub)
            elif e.is_file(follow_symlinks=False) and not skip(e.name):
                yield e.stat(follow_symlinks=False)
        except OSError:
            continue


def _tree_file_sizes(dir_fd: int, skip: Callable[[str], bool]) -> Iterator[int]:
    """st_size of every regular file below an open directory (errors are skipped)."""
    return (st.st_size for st in _tree_files(dir_fd, skip))


def _is_metadata(name: str) -> bool:
    return name == DIRIV_NAME or is_name_file(name)


# -- export ---------------------------------------------------------------------------------


def _cipher_files(vault: Vault, top: Path) -> Iterator[os.stat_result]:
    """lstat of every regular cipher file at or below a cipher path, without decrypting a name."""
    try:
        st = vault.lstat_cipher(top)
        if not stat_mod.S_ISDIR(st.st_mode):
            if stat_mod.S_ISREG(st.st_mode):
                yield st
            return
        fd = vault.dirs.open_dir(top)
    except OSError:
        return
    try:
        yield from _tree_files(fd, _is_metadata)
    finally:
        os.close(fd)


def plain_tree_size(vault: Vault, path: str) -> int:
    """Total plain bytes below a vault path, for progress bars.

    Summed from cipher file sizes (§5.2) without decrypting a single name: an estimate that
    counts stray files too, which is all a progress bar needs, at the cost of one stat a file.
    """
    return _export_sizes(vault, vault.cipher_path(path))[0]


def _export_sizes(vault: Vault, top: Path) -> tuple[int, int]:
    """(plain bytes, bytes written) of an export of a cipher path, from one walk. Holes are
    exported as holes (§5.3), so a file writes at most what its cipher file has on disk."""
    size = vault.content.cipher_to_plain_size
    plain = written = 0
    for st in _cipher_files(vault, top):
        n = size(st.st_size)
        plain += n
        written += min(n, st.st_blocks * 512)
    return plain, written


def _check_free_space(need: int, dir_fd: int, shown: Path) -> None:
    """Refuse, before writing anything, an export the destination has no room for."""
    try:
        fs = os.statvfs(dir_fd)
    except OSError:
        return  # no statistics (some network filesystems): a full disk still stops it cleanly
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
    if need > free:
        raise FsError(
            errno.ENOSPC,
            f"{short_path(shown)}: {os.strerror(errno.ENOSPC)} ({_mib(need)} to write, {_mib(free)} free)",
        )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _ancestors(fd: int) -> Iterator[os.stat_result]:
    """fstat of a directory and of each directory above it, up to the root (by "..", so
    symlinks and bind mounts cannot disguise where it is)."""
    cur = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        st = os.fstat(cur)
        for _ in range(4096):
            yield st
            up = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur)
            os.close(cur)
            cur = up
            parent = os.fstat(cur)
            if (parent.st_dev, parent.st_ino) == (st.st_dev, st.st_ino):
                return
            st = parent
    finally:
        os.close(cur)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _refuse_vault_destination(vault: Vault, dir_fd: int, shown: Path) -> None:
    """An export must not land in the cipher dir (plaintext in the synced folder) nor in a live
    mount of this same vault (it would read what it writes)."""
    try:
        cipher = os.stat(vault.cipherdir)
        here = os.fstat(dir_fd)
        inside = any(_same(st, cipher) for st in _ancestors(dir_fd))
    except OSError:
        return
    if inside:
        raise FsError(
            errno.EINVAL,
            f"{short_path(shown)}: is inside the cipher directory {short_path(vault.cipherdir)}; "
            "export to a place outside it",
        )
    for mountpoint, dev in fuse_mounts_of(vault.cipherdir):
        if here.st_dev == dev:
            raise FsError(
                errno.EINVAL,
                f"{short_path(shown)}: is inside {short_path(mountpoint)}, a mount of this same vault; "
                "export to a place outside it",
            )


@dataclass
class _Dest:
    """Where an exported object goes: a name in an open local directory (`shown` for messages).

    `existing` marks the one directory the user named that is there already (an export of a
    whole vault into an empty directory): it is filled, not made.
    """

    dir_fd: int
    name: str
    shown: Path
    existing: bool = False

    def child(self, fd: int, name: str) -> _Dest:
        return _Dest(fd, name, self.shown / name)


def _open_destination(target: Path, parts: list[str]) -> _Dest:
    """Resolve DEST as `cp -r` does and open the directory the export writes into.

    Only DEST itself is the user's choice and may pass through symlinks; everything below it
    is made by the export, relative to the descriptor returned here.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        fd = os.open(target, flags)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise fs_error(e, target) from None
    else:
        try:
            if not parts:
                if os.listdir(fd):
                    raise FsError(
                        errno.ENOTEMPTY, f"{short_path(target)}: destination directory is not empty"
                    )
                return _Dest(fd, ".", target, existing=True)
            out = _Dest(fd, parts[-1], target / parts[-1])
            _refuse_existing(out)
            return out
        except BaseException:
            os.close(fd)
            raise
    try:
        fd = os.open(target.parent, flags)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FsError(
                errno.ENOENT, f"{short_path(target.parent)}: destination directory does not exist"
            ) from None
        raise fs_error(e, target.parent) from None
    out = _Dest(fd, target.name, target)
    try:
        _refuse_existing(out)
    except BaseException:
        os.close(fd)
        raise
    return out


def _refuse_existing(out: _Dest) -> None:
    try:
        os.stat(out.name, dir_fd=out.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as e:  # e.g. a destination name over 255 bytes
        raise fs_error(e, out.shown) from None
    raise FsError(errno.EEXIST, f"{short_path(out.shown)}: already exists")


def export(
    vault: Vault,
    path: str,
    dest: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    processes: int = 1,
    force_decode: bool = False,
    on_total: Callable[[int], None] | None = None,
) -> TransferReport:
    """Decrypt a vault file or tree to `dest`, keeping modes, mtimes, symlinks and holes.

    Like `cp -r`: an existing directory `dest` receives the entry under its own name. Each file
    is written to a temporary name and renamed when complete, so a tampered file (reported in
    `failed`) or a cancel never leaves a half-written file behind. `processes=2` lets big
    files use a forked second decrypting process (see vault/bulk.py); keep the default 1 in
    programs whose other threads must not be forked, such as a running TUI.

    The cipher dir is untrusted: everything is created relative to directory descriptors
    with O_EXCL/O_NOFOLLOW semantics, nothing existing is entered, replaced or changed, and
    two cipher entries with one plain name are both reported in `failed`, neither exported.
    Before anything is written, an export into the cipher dir or a mount of this vault, or
    one the destination has no room for, is refused.

    `force_decode` (gocryptfs's -force_decode) writes a block that fails authentication as
    zeros and lists it in `damaged`, so the rest of a big file is saved. `on_total` gets,
    before the first `progress` call, the plain bytes they will add up to (`plain_tree_size`,
    from the walk the free-space check makes anyway).
    """
    job = _Job(progress, cancelled, processes, force_decode=force_decode)
    st = vault.stat(path)
    parts = split_path(path)
    cpath = vault.cipher_path(path)
    out = _open_destination(Path(dest), parts)
    try:
        _refuse_vault_destination(vault, out.dir_fd, out.shown)
        plain, need = _export_sizes(vault, cpath)
        _check_free_space(need, out.dir_fd, out.shown)
        if on_total is not None:
            on_total(plain)
        if not parts or not _named_twice(vault, cpath, "/".join(parts), job):
            _export_entry(vault, "/".join(parts), cpath, st, out, job)
    except Cancelled:
        _prune_local(out)
        raise
    finally:
        os.close(out.dir_fd)
    return job.report


def _prune_local(out: _Dest) -> None:
    """After a cancelled export: remove the directories it made that hold nothing (finished
    files stay; a destination directory that was there before stays too)."""
    if out.existing:
        _prune_below(out.dir_fd)
        return
    try:
        fd = os.open(out.name, _DIR_READ, dir_fd=out.dir_fd)
    except OSError:
        return  # not a directory: nothing to prune
    try:
        _prune_below(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(out.name, dir_fd=out.dir_fd)


def _prune_below(dir_fd: int) -> None:
    """rmdir every directory below an open one that holds nothing, deepest first."""
    try:
        names = [e.name for e in os.scandir(dir_fd) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for name in names:
        try:
            sub = os.open(name, _DIR_READ, dir_fd=dir_fd)
        except OSError:
            continue
        try:
            _prune_below(sub)
        finally:
            os.close(sub)
        with contextlib.suppress(OSError):  # not empty: it holds finished files
            os.rmdir(name, dir_fd=dir_fd)


def _export_entry(vault: Vault, path: str, cpath: Path, st: PlainStat, out: _Dest, job: _Job) -> None:
    """Export one object; the walk goes by cipher paths so no path is encrypted twice."""
    mode = st.mode
    try:
        if stat_mod.S_ISDIR(mode):
            _export_dir(vault, path, cpath, st, out, job)
        elif stat_mod.S_ISREG(mode):
            _export_file(vault, path, cpath, st, out, job)
        elif stat_mod.S_ISLNK(mode):
            _export_symlink(vault, path, cpath, st, out, job)
        else:
            job.report.skipped.append((path, "not a regular file, directory or symlink"))
    except FileExistsError:
        # Made meanwhile by someone else, or a name the destination filesystem takes for
        # another (case-insensitive): theirs stays, untouched.
        job.fail(path, f"{short_path(out.shown)} already exists in the destination; not replaced")


def _export_symlink(vault: Vault, path: str, cpath: Path, st: PlainStat, out: _Dest, job: _Job) -> None:
    try:
        link = vault.readlink_cipher(cpath, path)
    except VaultError as e:
        job.fail(path, str(e))
        return
    try:
        os.symlink(link, out.name, dir_fd=out.dir_fd)  # never replaces: EEXIST
    except FileExistsError:
        raise
    except OSError as e:
        raise fs_error(e, out.shown) from None
    try:
        os.utime(out.name, ns=(st.atime_ns, st.mtime_ns), dir_fd=out.dir_fd, follow_symlinks=False)
    except OSError as e:
        raise fs_error(e, out.shown) from None


def _export_dir(vault: Vault, path: str, cdir: Path, st: PlainStat, out: _Dest, job: _Job) -> None:
    try:
        if out.existing:
            dir_fd = os.open(".", _DIR_READ, dir_fd=out.dir_fd)
        else:
            os.mkdir(out.name, 0o700, dir_fd=out.dir_fd)  # never an existing one: EEXIST
            # O_NOFOLLOW: if the new name was swapped for a symlink meanwhile, it is not entered.
            dir_fd = os.open(out.name, _DIR_READ, dir_fd=out.dir_fd)
    except FileExistsError:
        raise
    except OSError as e:
        raise fs_error(e, out.shown) from None
    try:
        _export_children(vault, path, cdir, dir_fd, out, job)
        # Mode and times last, on the descriptor of what was made: children would change the
        # mtime, and a 0500 dir refuses writes.
        os.fchmod(dir_fd, stat_mod.S_IMODE(st.mode))
        os.utime(dir_fd, ns=(st.atime_ns, st.mtime_ns))
    except OSError as e:
        raise fs_error(e, out.shown) from None
    finally:
        os.close(dir_fd)


def _unique_entries(entries: list[DirEntry], path: str, job: _Job) -> list[DirEntry]:
    """The entries whose plain name no other entry has; the others are reported, one line each.

    Two cipher names can decrypt to one plain name (a long name and its `gocryptfs.longname.`
    alias, §6.7, or a planted copy): exporting both would write one through the other, so
    neither is exported.
    """
    groups: dict[str, list[DirEntry]] = {}
    for e in entries:
        groups.setdefault(e.name, []).append(e)
    for name, group in groups.items():
        if len(group) < 2:
            continue
        for e in group:
            others = ", ".join(f"a {o.kind} stored as {o.cipher_name}" for o in group if o is not e)
            job.fail(
                _join(path, name),
                f"the {e.kind} stored as {e.cipher_name} has the same name as {others}; neither is exported",
            )
    return [e for e in entries if len(groups[e.name]) == 1]


def _named_twice(vault: Vault, cpath: Path, path: str, job: _Job) -> bool:
    """Whether the one entry an export names also exists as a long-name alias (§6.7): then
    both are reported, as in a tree, and neither is exported. A few lstats, no listing."""
    if vault.options.plaintext_names:
        return False
    cparent = cpath.parent
    parent, _, name = path.rpartition("/")
    full = vault.encrypt_component(cparent, name)[1]
    stored: list[DirEntry] = []
    for disk in dict.fromkeys((full, vault.names.hash_long(full))):
        try:
            stored.append(DirEntry(name, disk, kind_of_mode(vault.lstat_in(cparent, disk).st_mode)))
        except OSError:
            continue
    if len(stored) < 2:
        return False
    _unique_entries(stored, parent, job)
    return True


def _export_children(vault: Vault, path: str, cdir: Path, dir_fd: int, out: _Dest, job: _Job) -> None:
    job.report.dirs += 1
    try:
        entries = vault.list_cipher_dir(cdir, include_bad=True, where=path or "/")
    except VaultError as err:
        job.fail(path or "/", str(err))
        entries = []
    good: list[DirEntry] = []
    for e in entries:
        if e.error is not None:
            job.fail(_join(path, e.cipher_name), f"undecryptable name: {e.error}")
        else:
            good.append(e)
    for e in sorted(_unique_entries(good, path, job), key=lambda e: e.name):
        child = _join(path, e.name)
        ccpath = cdir / e.cipher_name
        try:
            cst = vault.stat_cipher(ccpath, child)
        except VaultError as err:
            job.fail(child, str(err))
            continue
        _export_entry(vault, child, ccpath, cst, out.child(dir_fd, e.name), job)


class _AtomicFile:
    """A destination file that appears under its name only once complete, never replacing one.

    O_TMPFILE + linkat makes an unnamed file and names it at the end, so a failure leaves
    nothing and costs no unlink; where the filesystem lacks O_TMPFILE, a hidden temporary
    name (O_EXCL) is linked to the final name and removed. Either way an existing name, even
    a symlink, fails with EEXIST: nothing is written through it.
    """

    _proc_fd: int | None = None

    def __init__(self, dir_fd: int, name: str) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.tmp: str | None = None
        try:
            self.fd = os.open(".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except (OSError, AttributeError):
            self.tmp = _tmp_name()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            self.fd = os.open(self.tmp, flags, 0o600, dir_fd=dir_fd)

    @classmethod
    def _proc(cls) -> int:
        if cls._proc_fd is None:
            cls._proc_fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
        return cls._proc_fd

    def commit(self) -> None:
        if self.tmp is None:
            # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names the open unnamed file.
            os.link(
                str(self.fd), self.name, src_dir_fd=self._proc(), dst_dir_fd=self.dir_fd, follow_symlinks=True
            )
            os.close(self.fd)
        else:
            fd, self.fd = self.fd, -1  # closed now, whatever naming it does next
            os.close(fd)
            self._name_tmp()
            self.tmp = None
        self.fd = -1

    def _name_tmp(self) -> None:
        assert self.tmp is not None
        try:
            os.link(
                self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False
            )
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                raise
            # No hard links here (FAT, some network shares): rename, after making sure the
            # name is free (rename would replace it).
            try:
                os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                os.rename(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                return
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
        os.unlink(self.tmp, dir_fd=self.dir_fd)

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp, dir_fd=self.dir_fd)


def _export_file(vault: Vault, path: str, cpath: Path, st: PlainStat, dest: _Dest, job: _Job) -> None:
    if 0 < st.cipher_size < HEADER_LEN:
        # gocryptfs shows it as empty with a warning; exporting it so would hide the damage.
        job.fail(path, f"corrupt: {st.cipher_size} bytes, shorter than a file header ({HEADER_LEN})")
        return
    try:
        out = _AtomicFile(dest.dir_fd, dest.name)
    except OSError as e:
        raise fs_error(e, dest.shown) from None
    try:
        with vault.open_cipher_file(cpath, path) as f:
            on_bad = (
                (lambda block, why: job.report.damaged.append((path, block, why)))
                if job.force_decode
                else None
            )
            decrypt_to(f, out.fd, job.step, processes=job.processes, on_bad=on_bad)
        os.fchmod(out.fd, stat_mod.S_IMODE(st.mode))
        os.utime(out.fd, ns=(st.atime_ns, st.mtime_ns))
        out.commit()
        job.count_file()
    except VaultError as e:
        job.fail(path, str(e))
    except FileExistsError:
        raise
    except OSError as e:
        # A full or failing destination ends the whole export: every later file would fail too.
        raise fs_error(e, dest.shown) from None
    finally:
        out.discard()


# -- import ---------------------------------------------------------------------------------


def source_size(src: Path) -> int:
    st = os.lstat(src)
    if not stat_mod.S_ISDIR(st.st_mode):
        return st.st_size if stat_mod.S_ISREG(st.st_mode) else 0
    try:
        fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return sum(_tree_file_sizes(fd, lambda _name: False))
    finally:
        os.close(fd)


def import_(
    vault: Vault,
    src: str | os.PathLike[str],
    path: str,
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> TransferReport:
    """Encrypt a plain file or tree into the vault at `path`, keeping modes, mtimes, symlinks.

    Like `cp -r`: an existing vault directory receives the source under its own name, except
    that a source directory written with a trailing slash ("tree/") has its contents copied
    into it, as rsync does. Existing vault names are never replaced: such sources land in
    `failed`. Files are written under a temporary name and renamed when complete.
    """
    job = _Job(progress, cancelled)
    source = Path(src)
    try:
        sst = os.lstat(source)
    except OSError as e:
        raise fs_error(e, source) from None
    parts = split_path(path)
    if vault.exists(path):
        if not stat_mod.S_ISDIR(vault.stat(path).mode):
            raise FsError(errno.EEXIST, f"{short_path(path)}: already exists in the vault")
        if stat_mod.S_ISDIR(sst.st_mode) and os.fspath(src).endswith("/"):
            # rsync's convention: "SRC/" means the contents of SRC go into PATH.
            cdir = vault.cipher_path(path)
            _refuse_import_loop(vault, source, sst, cdir, "/".join(parts))
            importer = _Importer(vault, job)
            importer.clean_stale(cdir, "/".join(parts))
            with _open_source(source) as top:
                importer.dir_contents(top, "/".join(parts), cdir, fresh=False)
            return job.report
        parts = [*parts, source.name]
    dest = "/".join(parts)
    if vault.exists(dest):
        raise FsError(errno.EEXIST, f"{short_path(dest)}: already exists in the vault")
    # The only plain path encrypted whole: below it, the walk goes by cipher paths.
    cparent = vault.cipher_path("/".join(parts[:-1]))
    try:
        parent_is_dir = stat_mod.S_ISDIR(vault.lstat_cipher(cparent).st_mode)
    except OSError:
        parent_is_dir = False
    if not parent_is_dir:
        raise FsError(errno.ENOENT, f"{short_path(dest)}: parent directory does not exist")
    _refuse_import_loop(vault, source, sst, cparent, "/".join(parts[:-1]))
    importer = _Importer(vault, job)
    importer.clean_stale(cparent, "/".join(parts[:-1]))
    # The source is named by the user: its parent is opened following symlinks, the source
    # itself is what lstat saw.
    try:
        with _open_source(source.parent) as parent:
            importer.entry(parent.child(source.name or "."), sst, cparent, parts[-1], dest)
    except Cancelled:
        _prune_vault(vault, dest)
        raise
    return job.report


def _holds(outer: os.stat_result, open_dir: Callable[[], int]) -> bool:
    """Whether the directory `outer` is the directory `open_dir()` opens, or above it."""
    try:
        fd = open_dir()
    except OSError:
        return False
    try:
        return any(_same(st, outer) for st in _ancestors(fd))
    except OSError:
        return False
    finally:
        os.close(fd)


def _refuse_import_loop(vault: Vault, source: Path, sst: os.stat_result, cdir: Path, plain_dir: str) -> None:
    """Refuse to import a directory that holds where it would be written: the cipher dir or a
    folder above it (it would copy itself, encrypted again), or, through a live mount of this
    vault, the vault directory that receives it (it would copy itself without end)."""
    if not stat_mod.S_ISDIR(sst.st_mode):
        return
    if _holds(sst, lambda: vault.dirs.open_dir(cdir)):
        raise FsError(
            errno.EINVAL,
            f"{short_path(source)}: holds this vault's cipher directory {short_path(vault.cipherdir)}; "
            "a vault cannot be imported into itself",
        )
    for mountpoint, dev in fuse_mounts_of(vault.cipherdir):
        if sst.st_dev != dev:
            continue
        seen_there = os.path.join(mountpoint, plain_dir)
        if _holds(sst, functools.partial(os.open, seen_there, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)):
            raise FsError(
                errno.EINVAL,
                f"{short_path(source)}: is this vault's own mount at {short_path(mountpoint)} and holds "
                f"/{plain_dir}, where it would be imported; a directory cannot be copied into itself",
            )


def _prune_vault(vault: Vault, path: str) -> None:
    """After a cancelled import: remove the vault directories it made that hold nothing."""
    with contextlib.suppress(VaultError, OSError):
        if not vault.exists(path) or not stat_mod.S_ISDIR(vault.stat(path).mode):
            return
        for d, _entries in reversed(list(vault.walk(path))):
            with contextlib.suppress(VaultError, OSError):  # not empty: it holds finished files
                vault.rmdir(d)


@dataclass
class _Source:
    """A local object to import: a name in an open directory (`shown` for messages)."""

    dir_fd: int
    name: str
    shown: str

    def child(self, name: str) -> _Source:
        """An entry of this source, which must be an open directory (name "")."""
        return _Source(self.dir_fd, name, os.path.join(self.shown, name))


@contextlib.contextmanager
def _open_source(path: Path) -> Iterator[_Source]:
    """A local directory named by the user, open, as a `_Source` whose children are its entries."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield _Source(fd, "", os.fspath(path))
    finally:
        os.close(fd)


class _Importer:
    """One import: creates every object in its parent's cipher directory (the `_at` methods).

    Encrypting a plain path costs one EME call per component; by carrying each directory's
    cipher path down the walk, an object costs only the encryption of its own name. Nothing
    is ever replaced: files are renamed into place with `noreplace`, and mkdir, symlink and
    create fail on an existing name; such a source is reported in `failed`.
    """

    def __init__(self, vault: Vault, job: _Job) -> None:
        self.vault = vault
        self.job = job
        # One temporary name for the whole import: files are written one at a time, so it is
        # free again when the next one starts, and its encryption is remembered per directory.
        self.tmp = _tmp_name()

    def exists(self, src: str, dest: str) -> None:
        self.job.fail(src, f"{short_path(dest)} already exists in the vault")

    def clean_stale(self, cdir: Path, where: str) -> None:
        """Remove the temporary files of imports into this directory that were killed.

        A running import holds a lock on its temporary file (see `file`), which the kernel
        drops when the process dies, however it dies: an unlocked one is left over.
        """
        vault = self.vault
        try:
            entries = vault.list_cipher_dir(cdir, where=where or "/")
        except VaultError:
            return
        for e in entries:
            if e.kind != "file" or not IMPORT_TEMP_NAME.fullmatch(e.name):
                continue
            try:
                with vault.open_cipher_file(cdir / e.cipher_name, e.name) as f:
                    fcntl.flock(f.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                vault.unlink_at(cdir, e.name, _join(where, e.name))
            except (OSError, VaultError):  # locked: in use by a running import
                continue

    def entry(self, src: _Source, st: os.stat_result, cparent: Path, name: str, dest: str) -> None:
        """Import one object as `name` in the cipher directory `cparent` (vault path `dest`)."""
        vault, mode = self.vault, st.st_mode
        if stat_mod.S_ISREG(mode):
            self.file(src, st, cparent, name, dest)
        elif stat_mod.S_ISDIR(mode):
            try:
                cdir = vault.make_dir(cparent, name, 0o700, dest)[0]
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
                self.exists(src.shown, dest)
                return
            self.job.report.dirs += 1
            try:
                sub = os.open(src.name, _DIR_READ, dir_fd=src.dir_fd)
            except OSError as e:
                self.job.fail(src.shown, e.strerror or str(e))
                return
            try:
                self.dir_contents(_Source(sub, "", src.shown), dest, cdir, fresh=True)
            finally:
                os.close(sub)
            # Mode and times last: children change the mtime, and a 0500 dir refuses writes.
            try:
                vault.chmod_cipher(cdir, stat_mod.S_IMODE(mode))
                vault.utime_cipher(cdir, (st.st_atime_ns, st.st_mtime_ns))
            except OSError as e:
                raise fs_error(e, dest) from None
        elif stat_mod.S_ISLNK(mode):
            try:
                target = os.readlink(src.name, dir_fd=src.dir_fd)
            except OSError as e:
                self.job.fail(src.shown, e.strerror or str(e))
                return
            try:
                clink = vault.symlink_at(cparent, name, target, dest)
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
                self.exists(src.shown, dest)
                return
            try:
                vault.utime_cipher(clink, (st.st_atime_ns, st.st_mtime_ns))
            except OSError as e:
                raise fs_error(e, dest) from None
        else:
            self.job.report.skipped.append((src.shown, "not a regular file, directory or symlink"))

    def dir_contents(self, src: _Source, dest: str, cdir: Path, *, fresh: bool) -> None:
        """Import the entries of an open local directory into the cipher directory `cdir`.

        A `fresh` directory was just made by this import and holds none of the names yet;
        in any other, each name is looked up first so an existing one is reported before
        its content is encrypted in vain.
        """
        vault, job = self.vault, self.job
        with os.scandir(src.dir_fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            child_src = src.child(e.name)
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as err:
                job.fail(child_src.shown, err.strerror or str(err))
                continue
            child = _join(dest, e.name)
            if not fresh:
                try:
                    disk = vault.encrypt_component(cdir, e.name)[0]
                except VaultError as err:  # a name the vault cannot hold (too long, reserved)
                    job.fail(child_src.shown, str(err))
                    continue
                if vault.lexists_cipher(cdir / disk):
                    self.exists(child_src.shown, child)
                    continue
            self.entry(child_src, st, cdir, e.name, child)

    def file(self, src: _Source, st: os.stat_result, cparent: Path, name: str, dest: str) -> None:
        """Encrypt one file under the temporary name, then rename it to `name` (never replacing)."""
        vault, job = self.vault, self.job
        try:
            # O_NONBLOCK: if the name became a FIFO since the listing, do not wait on it.
            fd = os.open(
                src.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src.dir_fd
            )
            fin = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by `with fin` below
        except OSError as e:
            job.fail(src.shown, e.strerror or str(e))
            return
        tmp = _join(dest.rpartition("/")[0], self.tmp)  # for messages only
        done = False
        made = False
        try:
            with fin:
                if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                    job.fail(src.shown, "no longer a regular file")
                    return
                # Errors while writing name the file as the user knows it, not its temporary.
                out, _cpath = vault.create_at(cparent, self.tmp, 0o600, dest)
                made = True
                with out:
                    # Held until closed: tells `clean_stale` of other imports it is in use.
                    fcntl.flock(out.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    offset = 0
                    while chunk := fin.read(CHUNK):
                        out.write(offset, chunk)
                        offset += len(chunk)
                        job.step(len(chunk))
                    os.fchmod(out.fd, stat_mod.S_IMODE(st.st_mode))
                    os.utime(out.fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            try:
                vault.rename_at(cparent, self.tmp, cparent, name, noreplace=True, where=(tmp, dest))
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
                self.exists(src.shown, dest)  # made by someone else meanwhile: theirs stays
                return
            done = True
            job.count_file()
        except OSError as e:
            # A full or failing disk ends the whole import: every later file would fail too.
            raise fs_error(e, src.shown) from None
        finally:
            if made and not done:
                with contextlib.suppress(VaultError):
                    vault.unlink_at(cparent, self.tmp, tmp)
