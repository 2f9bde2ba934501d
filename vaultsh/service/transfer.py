"""Streaming export (decrypt to a plain tree) and import (encrypt a plain tree) with progress."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vaultsh.vault.errors import FsError, VaultError
from vaultsh.vault.names import DIRIV_NAME, is_name_file
from vaultsh.vault.vault import PlainStat, Vault, split_path

CHUNK = 1 << 20  # 1 MiB: big enough for throughput, small enough to keep memory flat

Progress = Callable[[int], None]
"""Called with the number of plaintext bytes just processed."""


class Cancelled(Exception):
    """The caller asked to stop; what was finished stays, nothing half-written does."""


@dataclass
class TransferReport:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Job:
    """The running state of one transfer."""

    progress: Progress | None
    cancelled: Callable[[], bool] | None
    processes: int = 1
    report: TransferReport = field(default_factory=TransferReport)

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


# -- export ---------------------------------------------------------------------------------


def plain_tree_size(vault: Vault, path: str) -> int:
    """Total plain bytes below a vault path, for progress bars.

    Summed from cipher file sizes (§5.2) without decrypting a single name: an estimate that
    counts stray files too, which is all a progress bar needs, at the cost of one stat a file.
    """
    top = vault.cipher_path(path)
    size = vault.content.cipher_to_plain_size
    if not top.is_dir():
        return size(top.stat().st_size) if top.is_file() else 0
    total = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            if name == DIRIV_NAME or is_name_file(name):
                continue
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                if stat_mod.S_ISREG(st.st_mode):
                    total += size(st.st_size)
    return total


def export(
    vault: Vault,
    path: str,
    dest: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    processes: int = 1,
) -> TransferReport:
    """Decrypt a vault file or tree to `dest`, keeping modes, mtimes and symlinks.

    Like `cp -r`: an existing directory `dest` receives the entry under its own name. Each file
    is written to a temporary name and renamed when complete, so a tampered file (reported in
    `failed`) or a cancel never leaves a half-written file behind. `processes=2` lets big
    files use a forked second decrypting process (see vault/bulk.py); keep the default 1 in
    programs whose other threads must not be forked, such as a running TUI.
    """
    job = _Job(progress, cancelled, processes)
    st = vault.stat(path)
    target = Path(dest)
    parts = split_path(path)
    if target.is_dir():
        if parts:
            target = target / parts[-1]
        elif any(target.iterdir()):
            raise FsError(errno.ENOTEMPTY, f"{target}: destination directory is not empty")
    if parts and os.path.lexists(target):
        raise FsError(errno.EEXIST, f"{target}: already exists")
    if not target.parent.is_dir():
        raise FsError(errno.ENOENT, f"{target.parent}: destination directory does not exist")
    try:
        _export_entry(vault, "/".join(parts), vault.cipher_path(path), st, target, job)
    except Cancelled:
        _prune_local(target, keep_top=not parts)
        raise
    return job.report


def _prune_local(target: Path, *, keep_top: bool) -> None:
    """After a cancelled export: remove the directories it made at `target` that hold nothing
    (finished files stay; with `keep_top`, `target` existed before and stays too)."""
    if target.is_symlink() or not target.is_dir():
        return
    for dirpath, _dirs, _files in os.walk(target, topdown=False):
        if keep_top and Path(dirpath) == target:
            continue
        with contextlib.suppress(OSError):  # not empty: it holds finished files
            os.rmdir(dirpath)


def _export_entry(vault: Vault, path: str, cpath: Path, st: PlainStat, target: Path, job: _Job) -> None:
    """Export one object; the walk goes by cipher paths so no path is encrypted twice."""
    mode = st.mode
    if stat_mod.S_ISDIR(mode):
        _export_dir(vault, path, cpath, st, target, job)
    elif stat_mod.S_ISREG(mode):
        _export_file(vault, path, cpath, st, target, job)
    elif stat_mod.S_ISLNK(mode):
        try:
            link = vault.readlink_cipher(cpath, path)
        except VaultError as e:
            job.fail(path, str(e))
            return
        os.symlink(link, target)
        os.utime(target, ns=(st.atime_ns, st.mtime_ns), follow_symlinks=False)
        job.report.symlinks += 1
    else:
        job.report.skipped.append((path, "not a regular file, directory or symlink"))


def _export_dir(vault: Vault, path: str, cdir: Path, st: PlainStat, target: Path, job: _Job) -> None:
    if not target.exists():
        os.mkdir(target, 0o700)
    job.report.dirs += 1
    try:
        entries = sorted(
            vault.list_cipher_dir(cdir, include_bad=True, where=path or "/"), key=lambda e: e.name
        )
    except VaultError as err:
        job.fail(path or "/", str(err))
        entries = []
    for e in entries:
        child = _join(path, e.name)
        if e.error is not None:
            job.fail(_join(path, e.cipher_name), f"undecryptable name: {e.error}")
            continue
        ccpath = cdir / e.cipher_name
        try:
            cst = vault.stat_cipher(ccpath, child)
        except VaultError as err:
            job.fail(child, str(err))
            continue
        _export_entry(vault, child, ccpath, cst, target / e.name, job)
    # Mode and times last: children would change the mtime, and a 0500 dir refuses writes.
    os.chmod(target, stat_mod.S_IMODE(st.mode))
    os.utime(target, ns=(st.atime_ns, st.mtime_ns))


class _AtomicFile:
    """A destination file that appears under its name only once complete.

    O_TMPFILE + linkat makes an unnamed file and names it at the end, so a failure leaves
    nothing and costs no unlink; where the filesystem lacks O_TMPFILE, a hidden temporary
    name and a rename do the same.
    """

    _proc_fd: int | None = None

    def __init__(self, target: Path) -> None:
        self.target = target
        self.tmp: Path | None = None
        try:
            self.fd = os.open(target.parent, os.O_WRONLY | os.O_TMPFILE, 0o600)
        except (OSError, AttributeError):
            self.tmp = target.with_name(_tmp_name())
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    @classmethod
    def _proc(cls) -> int:
        if cls._proc_fd is None:
            cls._proc_fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
        return cls._proc_fd

    def commit(self) -> None:
        if self.tmp is None:
            # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names the open unnamed file.
            os.link(str(self.fd), self.target, src_dir_fd=self._proc(), follow_symlinks=True)
            os.close(self.fd)
        else:
            os.close(self.fd)
            os.rename(self.tmp, self.target)
            self.tmp = None
        self.fd = -1

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)


def _export_file(vault: Vault, path: str, cpath: Path, st: PlainStat, target: Path, job: _Job) -> None:
    out = _AtomicFile(target)
    try:
        with vault.open_cipher_file(cpath, path) as f:
            f.decrypt_to(out.fd, job.step, processes=job.processes)
        os.fchmod(out.fd, stat_mod.S_IMODE(st.mode))
        os.utime(out.fd, ns=(st.atime_ns, st.mtime_ns))
        out.commit()
        job.count_file()
    except VaultError as e:
        job.fail(path, str(e))
    except OSError as e:
        # A full or failing destination ends the whole export: every later file would fail too.
        raise FsError(e.errno or errno.EIO, f"{target}: {e.strerror or e}") from None
    finally:
        out.discard()


# -- import ---------------------------------------------------------------------------------


def source_size(src: Path) -> int:
    st = os.lstat(src)
    if not stat_mod.S_ISDIR(st.st_mode):
        return st.st_size if stat_mod.S_ISREG(st.st_mode) else 0
    total = 0
    for root, _dirs, files in os.walk(src):
        for name in files:
            with contextlib.suppress(OSError):
                s = os.lstat(os.path.join(root, name))
                if stat_mod.S_ISREG(s.st_mode):
                    total += s.st_size
    return total


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
        raise FsError(e.errno or errno.ENOENT, f"{source}: {e.strerror}") from None
    parts = split_path(path)
    if vault.exists(path):
        if not stat_mod.S_ISDIR(vault.stat(path).mode):
            raise FsError(errno.EEXIST, f"{path}: already exists in the vault")
        if stat_mod.S_ISDIR(sst.st_mode) and os.fspath(src).endswith("/"):
            # rsync's convention: "SRC/" means the contents of SRC go into PATH.
            importer = _Importer(vault, job)
            importer.dir_contents(os.fspath(source), "/".join(parts), vault.cipher_path(path), fresh=False)
            return job.report
        parts = [*parts, source.name]
    dest = "/".join(parts)
    if vault.exists(dest):
        raise FsError(errno.EEXIST, f"{dest}: already exists in the vault")
    # The only plain path encrypted whole: below it, the walk goes by cipher paths.
    cparent = vault.cipher_path("/".join(parts[:-1]))
    if not cparent.is_dir():
        raise FsError(errno.ENOENT, f"{dest}: parent directory does not exist")
    try:
        _Importer(vault, job).entry(os.fspath(source), sst, cparent, parts[-1], dest)
    except Cancelled:
        _prune_vault(vault, dest)
        raise
    return job.report


def _prune_vault(vault: Vault, path: str) -> None:
    """After a cancelled import: remove the vault directories it made that hold nothing."""
    with contextlib.suppress(VaultError, OSError):
        if not vault.exists(path) or not stat_mod.S_ISDIR(vault.stat(path).mode):
            return
        for d, _entries in reversed(list(vault.walk(path))):
            with contextlib.suppress(VaultError, OSError):  # not empty: it holds finished files
                vault.rmdir(d)


def _os_error(e: OSError, where: str) -> FsError:
    return FsError(e.errno or errno.EIO, f"{where}: {e.strerror or e}")


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
        self.job.fail(src, f"{dest} already exists in the vault")

    def entry(self, src: str, st: os.stat_result, cparent: Path, name: str, dest: str) -> None:
        """Import one object as `name` in the cipher directory `cparent` (vault path `dest`)."""
        vault, mode = self.vault, st.st_mode
        if stat_mod.S_ISREG(mode):
            self.file(src, st, cparent, name, dest)
        elif stat_mod.S_ISDIR(mode):
            try:
                cdir = vault.mkdir_at(cparent, name, 0o700, dest)
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
                self.exists(src, dest)
                return
            self.job.report.dirs += 1
            self.dir_contents(src, dest, cdir, fresh=True)
            # Mode and times last: children change the mtime, and a 0500 dir refuses writes.
            try:
                os.chmod(cdir, stat_mod.S_IMODE(mode))
                os.utime(cdir, ns=(st.st_atime_ns, st.st_mtime_ns))
            except OSError as e:
                raise _os_error(e, dest) from None
        elif stat_mod.S_ISLNK(mode):
            try:
                target = os.readlink(src)
            except OSError as e:
                self.job.fail(src, e.strerror or str(e))
                return
            try:
                clink = vault.symlink_at(cparent, name, target, dest)
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
                self.exists(src, dest)
                return
            try:
                os.utime(clink, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            except OSError as e:
                raise _os_error(e, dest) from None
            self.job.report.symlinks += 1
        else:
            self.job.report.skipped.append((src, "not a regular file, directory or symlink"))

    def dir_contents(self, src: str, dest: str, cdir: Path, *, fresh: bool) -> None:
        """Import the entries of the local directory `src` into the cipher directory `cdir`.

        A `fresh` directory was just made by this import and holds none of the names yet;
        in any other, each name is looked up first so an existing one is reported before
        its content is encrypted in vain.
        """
        vault, job = self.vault, self.job
        with os.scandir(src) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as err:
                job.fail(e.path, err.strerror or str(err))
                continue
            child = _join(dest, e.name)
            if not fresh:
                try:
                    disk = vault.encrypt_component(cdir, e.name)[0]
                except VaultError as err:  # a name the vault cannot hold (too long, reserved)
                    job.fail(e.path, str(err))
                    continue
                if os.path.lexists(cdir / disk):
                    self.exists(e.path, child)
                    continue
            self.entry(e.path, st, cdir, e.name, child)

    def file(self, src: str, st: os.stat_result, cparent: Path, name: str, dest: str) -> None:
        """Encrypt one file under the temporary name, then rename it to `name` (never replacing)."""
        vault, job = self.vault, self.job
        try:
            fin = open(src, "rb", buffering=0)  # noqa: SIM115 - closed by `with fin` below
        except OSError as e:
            job.fail(src, e.strerror or str(e))
            return
        tmp = _join(dest.rpartition("/")[0], self.tmp)  # for messages only
        done = False
        made = False
        try:
            with fin:
                # Errors while writing name the file as the user knows it, not its temporary.
                out, _cpath = vault.create_at(cparent, self.tmp, 0o600, dest)
                made = True
                with out:
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
                self.exists(src, dest)  # made by someone else meanwhile: theirs stays
                return
            done = True
            job.count_file()
        except OSError as e:
            # A full or failing disk ends the whole import: every later file would fail too.
            raise FsError(e.errno or errno.EIO, f"{src}: {e.strerror or e}") from None
        finally:
            if made and not done:
                with contextlib.suppress(VaultError):
                    vault.unlink_at(cparent, self.tmp, tmp)
