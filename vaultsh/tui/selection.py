"""Acting on several selected entries at once: one export, one delete, one progress bar, one question."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path

from vaultsh.service import commands, transfer
from vaultsh.vault.errors import ExitCode, FsError, VaultError

Task = Callable[[commands.Session], int]


class Selection:
    """The plain names selected in the shown directory, and where a `v` range starts."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.anchor: str | None = None

    def clear(self) -> None:
        self.names.clear()
        self.anchor = None

    def toggle(self, name: str) -> None:
        self.names.symmetric_difference_update({name})
        self.anchor = name

    def extend_to(self, rows: list[str | None], cursor: int) -> None:
        """Select every row from the anchor (the last toggled or ranged entry) to `cursor`;
        without an anchor in view, the cursor's row, which becomes the anchor."""
        if not 0 <= cursor < len(rows):
            return
        start = rows.index(self.anchor) if self.anchor in rows else cursor
        low, high = sorted((start, cursor))
        self.names.update(name for name in rows[low : high + 1] if name is not None)
        self.anchor = rows[cursor]

    def invert(self, shown: list[str]) -> None:
        """Flip the shown names (a filter hides the others, which keep their state)."""
        self.names.symmetric_difference_update(shown)

    def keep_only(self, existing: set[str]) -> None:
        """Forget names that are gone (deleted, renamed) after a reload."""
        self.names.intersection_update(existing)


def run_guarded(session: commands.Session, task: Task) -> int:
    """Run `task` as `commands.run_line` runs a command: every failure one line and its code."""
    io = session.io
    try:
        return task(session)
    except VaultError as e:
        io.error(str(e))
        return int(e.exit_code)
    except transfer.Cancelled:
        io.error("cancelled")
        return int(ExitCode.SIGINT)
    except OSError as e:
        io.error(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        return int(ExitCode.OTHER)


def tree_counts(session: commands.Session, paths: list[str]) -> tuple[int, int]:
    """(files and symlinks, directories) in the given vault paths and below them."""
    vault = session.vault
    files = dirs = 0
    for path in paths:
        if not stat_mod.S_ISDIR(vault.stat(path).mode):
            files += 1
            continue
        for _d, entries in vault.walk(path):
            dirs += 1
            files += sum(1 for e in entries if not e.is_dir)
    return files, dirs


def export_selection(paths: list[str], dest: str) -> Task:
    """Decrypt every selected path into the local directory `dest`, with one progress total."""

    def task(session: commands.Session) -> int:
        vault, io = session.vault, session.io
        target = Path(os.path.expanduser(dest))
        if not target.is_dir():
            raise FsError(errno.ENOTDIR, f"{target}: not a directory (the selected entries go into one)")
        total = sum(transfer.plain_tree_size(vault, p) for p in paths)
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            done += n
            io.progress(done, total)

        files = dirs = size = 0
        failed: list[tuple[str, str]] = []
        for path in paths:
            report = transfer.export(vault, path, target, progress=progress, cancelled=io.cancelled)
            files, dirs, size = files + report.files, dirs + report.dirs, size + report.bytes
            failed.extend(report.failed)
        for where, why in failed:
            io.error(f"export failed for {where}: {why}")
        io.write(
            f"exported {len(paths)} selected entries to {target}: {files} files, {dirs} dirs, "
            f"{commands.human_bytes(size)}"
        )
        return int(ExitCode.FSCK_ERRORS) if failed else 0

    return task


def delete_selection(paths: list[str]) -> Task:
    """Delete every selected path after one question that says how much it removes."""

    def task(session: commands.Session) -> int:
        io = session.io
        files, dirs = tree_counts(session, paths)
        question = (
            f"Delete the {len(paths)} selected entries from the vault: {files} files and "
            f"{dirs} directories in all? This cannot be undone."
        )
        if not io.confirm(question):
            io.write("nothing deleted")
            return 0
        for path in paths:
            commands.remove_path(session, "/" + path, recursive=True)
        io.write(f"deleted {len(paths)} entries ({files} files, {dirs} directories)")
        return 0

    return task
