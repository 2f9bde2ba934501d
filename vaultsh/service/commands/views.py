"""What only a reverse-mode folder (§9) has: its encrypted view exported, write commands refused."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session, show
from vaultsh.service.commands.transfers import ProgressCounter, finish_transfer
from vaultsh.service.registry import read_only_reason
from vaultsh.vault.errors import (
    FsError,
    UsageError,
    VaultError,
    fs_error,
)
from vaultsh.vault.reverse import ReverseEntry, ReverseView


def reverse_refusal(command: str, plaindir: Path) -> str:
    """The one-line refusal of a command that writes into a vault, on a reverse-mode folder."""
    return f"{command}: {read_only_reason(plaindir)}"


def _view(session: Session) -> ReverseView:
    if session.reverse is None:
        raise UsageError(f"{session.cipherdir}: not a reverse-mode folder")
    return session.reverse


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
    entry = view.entry(view.node(plain))
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
