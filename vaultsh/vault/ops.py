"""Creating, removing and renaming vault entries with gocryptfs's tree invariants (spec §6.7, §8)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

from vaultsh.vault.core import SameObject, VaultCore, split_path
from vaultsh.vault.dirfds import RENAME_EXCHANGE, renameat2
from vaultsh.vault.errors import FsError, fs_error, short_path
from vaultsh.vault.file import VaultFile
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, is_long_name, write_diriv, write_name_file

_RMDIR_PREFIX = DIRIV_NAME + ".rmdir."
_T = TypeVar("_T")
Owner = tuple[int, int]  # (uid, gid) to give a new object; -1 keeps one, as in chown(2)


class RenameResult(NamedTuple):
    """What a rename did: cipher paths, the source's stat, and the stat of what it replaced."""

    src: Path
    dst: Path
    src_stat: os.stat_result
    replaced: os.stat_result | None


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


class TreeOps(VaultCore):
    """The operations that add, remove or move entries of a forward vault.

    Each keeps the tree invariants of spec §8 (a diriv in every new directory, a long name's
    `.name` sidecar written before its object and removed after it), so gocryptfs and
    `gocryptfs -fsck` accept the result. The plain-path forms re-encrypt the parent's path;
    the `*_at` forms take the parent's cipher path, as a mount knows it already.
    """

    def _name_in_parent(self, path: str, at_root: FsError) -> tuple[Path, str, str]:
        """Parent cipher dir (which must exist), disk name and full name of the last component
        of `path`; `at_root` is raised for the root, which has no name in a parent."""
        parts = split_path(path)
        if not parts:
            raise at_root
        parent = self.cipher_path("/".join(parts[:-1]))
        self._check_dir(parent, path)
        disk, full = self.encrypt_component(parent, parts[-1])
        return parent, disk, full

    def _prepare_new(self, path: str) -> tuple[Path, Path, str, str]:
        """Parent cipher dir, cipher path, disk name and full name of a new entry."""
        parent, disk, full = self._name_in_parent(path, FsError(errno.EEXIST, "/: the root already exists"))
        cpath = parent / disk
        if self.lexists_cipher(cpath):
            raise FsError(errno.EEXIST, f"{short_path(path)}: already exists")
        return parent, cpath, disk, full

    def _with_name_file(self, parent: Path, disk: str, full: str, where: str) -> bool:
        """Write the `.name` sidecar of a long name first (§6.7); True if this call made it."""
        if disk == full or self.options.plaintext_names:
            return False
        sync = self.sync_metadata

        def write(fd: int) -> bool:
            return write_name_file(parent, disk, full, sync=sync, dir_fd=fd)

        try:
            return self.dirs.call(parent, write)
        except OSError as e:
            raise fs_error(e, where) from None

    def _drop_name_file(self, parent: Path, disk: str) -> None:
        if is_long_name(disk) and not self.options.plaintext_names:
            with contextlib.suppress(FileNotFoundError):
                self.dirs.at(parent, disk + LONGNAME_SUFFIX, os.unlink)

    def _make_named(self, parent: Path, disk: str, full: str, where: str, make: Callable[[int], _T]) -> _T:
        """Create an object with the long-name `.name` sidecar written first and dropped again
        if the object cannot be made (§6.7); `make` gets the parent's descriptor."""
        made = self._with_name_file(parent, disk, full, where)
        try:
            return self.dirs.call(parent, make)
        except OSError as e:
            if made:
                self._drop_name_file(parent, disk)
            raise fs_error(e, where) from None

    @staticmethod
    def _open_new(dir_fd: int, disk: str, mode: int) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(disk, flags, mode, dir_fd=dir_fd)

    def create(self, path: str, mode: int = 0o644) -> VaultFile:
        """Create an empty file (0 bytes on disk until the first write, §5.4) and open it."""
        parent, _cpath, disk, full = self._prepare_new(path)
        fd = self._make_named(parent, disk, full, path, lambda d: self._open_new(d, disk, mode))
        return self._file(fd, path)

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
        made = self._with_name_file(parent, disk, full, where)
        try:
            self.dirs.at(parent, disk, os.mkdir, 0o700)
        except OSError as e:
            if made:
                self._drop_name_file(parent, disk)
            raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None

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
            raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None
        if not self.options.diriv or DIRIV_NAME not in names:
            if names:
                raise FsError(errno.ENOTEMPTY, f"{short_path(where)}: directory not empty")
            try:
                self.dirs.at(parent, name, os.rmdir)
            except OSError as e:
                raise fs_error(e, where) from None
            return
        if len(names) > 1:
            raise FsError(errno.ENOTEMPTY, f"{short_path(where)}: directory not empty")
        # Moving the diriv out first keeps a crash from leaving a dir without IV but with names.
        # os.urandom, not `secrets`: that module loads `random` into every mount's start.
        parked = f"{_RMDIR_PREFIX}{int.from_bytes(os.urandom(8))}"
        try:
            mode = os.fstat(dfd).st_mode
            if not mode & 0o200:
                os.fchmod(dfd, stat_mod.S_IMODE(mode) | 0o700)
            self.dirs.call(parent, lambda pfd: os.rename(DIRIV_NAME, parked, src_dir_fd=dfd, dst_dir_fd=pfd))
        except OSError as e:
            raise fs_error(e, where) from None
        try:
            self.dirs.at(parent, name, os.rmdir)
        except OSError as e:
            with contextlib.suppress(OSError):  # put the IV back: the directory stays whole
                self.dirs.call(
                    parent, lambda pfd: os.rename(parked, DIRIV_NAME, src_dir_fd=pfd, dst_dir_fd=dfd)
                )
            raise fs_error(e, where) from None
        self.dirs.at(parent, parked, os.unlink)

    def rename(self, src: str, dst: str) -> None:
        """Rename, replacing an existing file or empty directory at `dst` (§6.7, §8.4)."""
        csrc = self.cipher_path(src)
        if csrc == self.cipherdir:
            raise FsError(errno.EBUSY, "/: cannot rename the root")
        try:
            src_st = self.lstat_cipher(csrc)
        except OSError as e:
            raise fs_error(e, src) from None
        dparent, disk, full = self._name_in_parent(dst, FsError(errno.EBUSY, "/: cannot replace the root"))
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
                raise fs_error(e, src) from None
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
            raise fs_error(e, dst) from None
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
        made = self._with_name_file(dparent, disk, full, dst)
        sparent, sname = self.dirs.split(csrc)
        try:
            self.dirs.pair(sparent, dparent, lambda s, d: os.rename(sname, disk, src_dir_fd=s, dst_dir_fd=d))
        except OSError as e:
            if made:
                self._drop_name_file(dparent, disk)
            raise fs_error(e, f"{short_path(src)} -> {dst}") from None
        if stat_mod.S_ISDIR(src_st.st_mode):
            self._forget_dir(csrc)
        self._drop_name_file(sparent, sname)
        return RenameResult(csrc, cdst, src_st, dst_st)

    # -- by the parent's cipher path ----------------------------------------------------------
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
                raise fs_error(e, where) from None
        return self._file(fd, where, st), cparent / disk

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
                raise fs_error(e, where) from None
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
            raise fs_error(e, where) from None
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
        src_disk = self.encrypt_component(src_parent, src_name)[0]
        src, dst = where
        return self.rename_stored_at(
            src_parent, src_disk, dst_parent, dst_name, noreplace=noreplace, where=(src or src_name, dst)
        )

    def rename_stored_at(
        self,
        src_parent: Path,
        src_disk: str,
        dst_parent: Path,
        dst_name: str,
        *,
        noreplace: bool = False,
        where: tuple[str, str] = ("", ""),
    ) -> RenameResult:
        """As rename_at, for an entry known by its name on disk rather than a plain name (a
        sync tool's conflict copy, whose name decrypts to nothing) given the plain `dst_name`."""
        disk, full = self.encrypt_component(dst_parent, dst_name)
        src, dst = where
        return self._rename_cipher(
            src_parent / src_disk,
            dst_parent,
            disk,
            full,
            src or src_disk,
            dst or dst_name,
            noreplace=noreplace,
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
            raise fs_error(e, src) from None
        try:
            dst_st = self.lstat_in(dst_parent, ddisk)
        except OSError as e:
            raise fs_error(e, dst) from None
        try:
            self.dirs.pair(
                src_parent, dst_parent, lambda s, d: renameat2(s, sdisk, d, ddisk, RENAME_EXCHANGE)
            )
        except OSError as e:
            raise fs_error(e, f"{short_path(src)} <-> {dst}") from None
        csrc, cdst = src_parent / sdisk, dst_parent / ddisk
        # Cached IVs and descriptors are keyed by path: both paths now hold another directory.
        for cpath, st in ((csrc, src_st), (cdst, dst_st)):
            if stat_mod.S_ISDIR(st.st_mode):
                self._forget_dir(cpath)
        return RenameResult(csrc, cdst, src_st, None), RenameResult(cdst, csrc, dst_st, None)
