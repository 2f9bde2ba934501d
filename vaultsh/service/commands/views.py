"""Commands on reverse-mode folders (§9): their encrypted view listed, translated, exported."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
import time
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session, SessionIO, show
from vaultsh.service.commands.transfers import ProgressCounter, finish_transfer
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    FsError,
    UsageError,
    VaultError,
    fs_error,
)
from vaultsh.vault.reverse import ReverseEntry, ReverseView
from vaultsh.vault.vault import kind_of_mode


def reverse_refusal(command: str, plaindir: Path) -> str:
    """Why a command that writes into a vault has no meaning on a reverse-mode folder."""
    return (
        f"{command}: the encrypted view of a reverse-mode folder is read-only; "
        f"change the plain files in {plaindir} instead"
    )


def _view(session: Session) -> ReverseView:
    if session.reverse is None:
        raise UsageError(f"{session.cipherdir}: not a reverse-mode folder")
    return session.reverse


def view_path(view: ReverseView, plain: str) -> str:
    """The path in the encrypted view of a plain path: its names encrypted one by one (§9.3)."""
    cipher = ""
    for part in [p for p in plain.split("/") if p]:
        disk, _full = view.encrypt_name(cipher, part)
        cipher = f"{cipher}/{disk}" if cipher else disk
    return cipher


def view_entry(view: ReverseView, plain: str) -> ReverseEntry:
    """The view's entry of an existing plain path ("" is the root); FsError if there is none."""
    if not plain:
        return ReverseEntry("", "", "dir", plain="")
    if plain == REVERSE_CONF_NAME and not view.config_custom:
        raise FsError(errno.ENOENT, f"{show(plain)}: the config is shown as {CONF_NAME} in the view")
    try:
        st = view.lstat_plain(plain)
    except OSError as e:
        raise FsError(e.errno or errno.EIO, f"{show(plain)}: {e.strerror or e}") from None
    cipher = view_path(view, plain)
    return ReverseEntry(cipher.rpartition("/")[2], cipher, kind_of_mode(st.st_mode), plain)


def _view_tree_size(view: ReverseView, entry: ReverseEntry) -> int:
    """Cipher bytes of the regular files below an entry of the view (for progress bars)."""
    if entry.kind != "dir":
        return view.cipher_size(entry) if entry.kind == "file" else 0
    total = 0
    todo = [entry]
    while todo:  # through the view itself: relative to directory fds, no link followed
        d = todo.pop()
        with contextlib.suppress(OSError, VaultError):
            for e in view.listdir(d.cipher_path, d.plain):
                if e.plain is None:
                    continue  # the view's own diriv, .name files and config
                if e.kind == "dir":
                    todo.append(e)
                elif e.kind == "file":
                    total += view.cipher_size(e)
    return total


def export_view(session: Session, path: str, dest: str) -> int:
    """`export` in a reverse-mode folder: write the encrypted view of PATH (a backup, §9.4).

    Like `export`, an existing directory DEST receives the entry under its (encrypted) name;
    the root goes into DEST itself, which must then be empty or new. Exporting the root gives
    a complete vault (with its gocryptfs.conf) that gocryptfs or vaultsh open in forward mode.
    Files are streamed through `ReverseView.iter_file` with progress and cancellation; a file
    cut short by a cancel or an error is removed.
    """
    view = _view(session)
    plain = session.resolve(path)
    entry = view_entry(view, plain)
    # Absolute, so that DEST always has a parent and a name ("." has neither).
    target = Path(os.path.abspath(os.path.expanduser(dest)))
    if target.is_dir():
        if plain:
            target = target / entry.cipher_name
        elif any(target.iterdir()):
            raise FsError(errno.ENOTEMPTY, f"{target}: destination directory is not empty")
    if plain and os.path.lexists(target):
        raise FsError(errno.EEXIST, f"{target}: already exists")
    if not target.parent.is_dir():
        raise FsError(errno.ENOENT, f"{target.parent}: destination directory does not exist")
    total = _view_tree_size(view, entry) if session.show_progress else 0
    counter = ProgressCounter(session.io, total)
    report = transfer.TransferReport()
    # Everything is made relative to descriptors of directories this export opened, never
    # through a symlink: DEST's parent is the user's choice (it may be reached by a link),
    # below it nothing is followed and nothing existing is written through.
    try:
        parent_fd = os.open(target.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise fs_error(e, target.parent) from None
    try:
        _export_view_entry(session, view, entry, parent_fd, target.name, counter, report)
    finally:
        os.close(parent_fd)
    return finish_transfer(session, report, "export")


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _export_view_entry(
    session: Session,
    view: ReverseView,
    entry: ReverseEntry,
    dir_fd: int,
    name: str,
    counter: ProgressCounter,
    report: transfer.TransferReport,
) -> None:
    """Write one entry of the view as `name` in the directory `dir_fd`: created new (O_EXCL,
    no symlink followed), modes and times set on the descriptor of what was created."""
    where = show(entry.plain or "") if entry.plain is not None else entry.cipher_path
    if session.io.cancelled():
        raise transfer.Cancelled()
    try:
        if entry.kind == "dir":
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            except FileExistsError:
                if entry.cipher_path:
                    raise
                # The root goes into DEST itself, which export_view found empty.
            sub = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
            try:
                for child in view.listdir(entry.cipher_path, entry.plain):
                    _export_view_entry(session, view, child, sub, child.cipher_name, counter, report)
                st = view.stat(entry)
                os.chmod(sub, stat_mod.S_IMODE(st.mode))
                os.utime(sub, ns=(st.atime_ns, st.mtime_ns))
            finally:
                os.close(sub)
            report.dirs += 1
        elif entry.kind == "symlink":
            os.symlink(view.readlink(entry), name, dir_fd=dir_fd)
            st = view.stat(entry)
            os.utime(name, ns=(st.atime_ns, st.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
            report.symlinks += 1
        elif entry.kind == "file":
            fd = os.open(name, _NEW_FILE, 0o600, dir_fd=dir_fd)
            try:
                with open(fd, "wb", closefd=False) as f:
                    for chunk in view.iter_file(entry):
                        f.write(chunk)
                        report.bytes += len(chunk)
                        counter(len(chunk))
                        if session.io.cancelled():
                            raise transfer.Cancelled()
                st = view.stat(entry)
                os.chmod(fd, stat_mod.S_IMODE(st.mode))
                os.utime(fd, ns=(st.atime_ns, st.mtime_ns))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
                raise
            finally:
                os.close(fd)
            report.files += 1
        else:
            report.skipped.append((where, "not a file, directory or symlink"))
    except (OSError, VaultError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        report.failed.append((where, why))


def ls_long_line(mode: int, nlink: int, size: int, mtime_ns: int, shown: str) -> str:
    """One line of `ls -l`: mode, links, size, time, then the name as already shown."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime_ns / 1e9))
    return f"{stat_mod.filemode(mode)} {nlink:>3} {size:>12} {when} {shown}"


def write_ls_heading(io: SessionIO, plain: str, first: bool) -> None:
    """The `dir:` line of `ls -R` above a directory's entries, a blank line before all but the first."""
    if not first:
        io.write("")
    io.write(f"{quote_name(show(plain))}:")


def list_view(session: Session, path: str, *, long: bool, recursive: bool, cipher: bool) -> int:
    """`ls` in a reverse-mode folder: the plain files, with their names in the view on request."""
    view = _view(session)
    io = session.io
    todo = [view_entry(view, session.resolve(path))]
    first = True
    while todo:
        d = todo.pop(0)
        assert d.plain is not None
        if d.kind != "dir":
            todo_entries = [d]
        else:
            todo_entries = sorted(
                (e for e in view.listdir(d.cipher_path, d.plain) if e.plain is not None),
                key=lambda e: e.plain or "",
            )
            if recursive:
                write_ls_heading(io, d.plain, first)
        first = False
        subdirs = []
        for e in todo_entries:
            if io.cancelled():
                raise transfer.Cancelled()
            assert e.plain is not None
            name = quote_name(e.plain.rpartition("/")[2] if d.kind == "dir" else path)
            suffix = f"  [{quote_name(e.cipher_name)}]" if cipher else ""
            if long:
                st = view.lstat_plain(e.plain)
                if stat_mod.S_ISLNK(st.st_mode):
                    name = f"{name} -> {quote_name(view.readlink_plain(e.plain))}"
                name = ls_long_line(st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns, name)
            io.write(name + suffix)
            if e.kind == "dir" and d.kind == "dir":
                subdirs.append(e)
        if recursive:
            todo[0:0] = subdirs
    return 0
