"""Acting on several selected entries at once: one export, delete or move, one progress bar, one question."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from vaultsh.service import commands, transfer
from vaultsh.tui.completion import CompletingInput, candidates_hint
from vaultsh.tui.safety import as_text
from vaultsh.tui.screens import PromptScreen
from vaultsh.vault.display import quote_name, safe_text
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


def tree_counts(session: commands.Session, paths: list[str], command: str) -> tuple[int, int]:
    """(files and symlinks, directories) in the given vault paths and below them, for `command`."""
    vault = session.vault_for(command)
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
        vault, io = session.vault_for("export"), session.io
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
        files, dirs = tree_counts(session, paths, "rm")
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


# What to do with selected names that already exist in the destination, asked once for all.
CLASH_CHOICES = [
    ("overwrite", "Overwrite"),
    ("keep-both", "Keep both"),
    ("skip", "Skip"),
    ("cancel", "Cancel"),
]
NAMED_CLASHES = 3  # the clash question names this many, then says how many more


def _names(paths: list[str]) -> str:
    shown = [quote_name(p.rpartition("/")[2]) for p in paths[:NAMED_CLASHES]]
    more = len(paths) - NAMED_CLASHES
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _refuse_unmovable(session: commands.Session, paths: list[str], target: str) -> None:
    """One line if the selection cannot go into `target`: missing, not a directory, the
    directory they are in already, or inside one of the selected directories."""
    vault, where = session.vault_for("mv"), commands.show(target)
    if not vault.exists(target):
        raise FsError(errno.ENOENT, f"{where}: no such directory in the vault (the entries go into one)")
    if not stat_mod.S_ISDIR(vault.stat(target).mode):
        raise FsError(errno.ENOTDIR, f"{where}: not a directory (the entries go into one)")
    for path in paths:
        if target == path or target.startswith(path + "/"):
            shown = commands.show(path)
            raise FsError(errno.EINVAL, f"{shown}: cannot move a directory into itself ({where})")
    if paths and paths[0].rpartition("/")[0] == target:
        raise FsError(errno.EINVAL, f"the selected entries are already in {where}")


def _clash_policy(session: commands.Session, clashes: list[str], target: str) -> str:
    """Ask once what to do with the selected names that exist in `target` already. A directory
    on either side is never overwritten (that would merge or lose a tree): no such answer then."""
    vault, io = session.vault_for("mv"), session.io
    if not clashes:
        return "skip"
    dir_involved = any(
        stat_mod.S_ISDIR(vault.stat(p).mode) or stat_mod.S_ISDIR(vault.stat(_into(target, p)).mode)
        for p in clashes
    )
    choices = [c for c in CLASH_CHOICES if not (dir_involved and c[0] == "overwrite")]
    where = commands.show(target)
    question = f"{len(clashes)} of the selected names already exist in {where}: {_names(clashes)}."
    if dir_involved:
        question += " A directory is never overwritten."
    if not isinstance(io, commands.Chooser):
        raise FsError(errno.EEXIST, f"{commands.show(_into(target, clashes[0]))}: already exists")
    return io.choose(question, choices) or "cancel"


def _into(target: str, path: str) -> str:
    name = path.rpartition("/")[2]
    return f"{target}/{name}" if target else name


def move_selection(paths: list[str], dest: str, moved: Callable[[str], None] = lambda _p: None) -> Task:
    """Move every selected path into the vault directory `dest` (a plain path) with `mv`, after
    one question on names that exist there and one that says how much moves where; `moved`
    hears of each path once it has gone. Every refusal comes before the first move: nothing
    is left half-moved by a clash or a typo."""

    def task(session: commands.Session) -> int:
        io = session.io
        target, where = dest, commands.show(dest)
        _refuse_unmovable(session, paths, target)
        vault = session.vault_for("mv")
        clashes = [p for p in paths if vault.exists(_into(target, p))]
        policy = _clash_policy(session, clashes, target)
        if policy == "cancel":
            io.write("nothing moved")
            return 0
        moving = [p for p in paths if not (policy == "skip" and p in clashes)]
        if not moving:
            io.write(f"nothing moved: every selected name exists in {where} already")
            return 0
        files, dirs = tree_counts(session, moving, "mv")
        question = (
            f"Move the {len(moving)} selected entries ({files} files and {dirs} directories in all) "
            f"into {where}?"
        )
        if policy == "overwrite":
            question += f" {len(clashes)} existing files there are replaced."
        elif clashes:
            kept = "keep their names with a number added" if policy == "keep-both" else "are skipped"
            question += f" The {len(clashes)} names that exist there {kept}."
        if not io.confirm(question):
            io.write("nothing moved")
            return 0
        for done, path in enumerate(moving):
            if io.cancelled():
                io.write(f"moved {done} of {len(moving)} entries into {where} before cancelling")
                raise transfer.Cancelled()
            into = _into(target, path)
            if path in clashes and policy == "keep-both":
                into = commands.free_name(vault, into)
            on_exists = "overwrite" if path in clashes and policy == "overwrite" else None
            commands.move_path(session, "/" + path, "/" + into, on_exists=on_exists)
            moved(path)
            io.progress(done + 1, len(moving))
        skipped = len(paths) - len(moving)
        io.write(
            f"moved {len(moving)} entries ({files} files, {dirs} directories) into {where}"
            + (f"; skipped {skipped} whose names exist there" if skipped else "")
        )
        return 0

    return task


def parse_vault_path(session: commands.Session, typed: str, shown_dir: str) -> str:
    """A vault path typed in a dialog (a completed name comes shell-quoted) as a plain path:
    a relative one is taken in the shown directory."""
    try:
        words = commands.split_line(typed)
    except ValueError:
        words = []
    path = words[0] if len(words) == 1 else typed
    return session.resolve(path if path.startswith("/") else f"/{shown_dir}/{path}")


class VaultDirPrompt(PromptScreen):
    """Ask for a directory in the vault; Tab completes vault directories as `cd` does."""

    def __init__(self, title: str, prompt: str, value: str, session: commands.Session) -> None:
        super().__init__(title, prompt, value)
        self.session = session

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(safe_text(self.title_text), classes="dialog-title", markup=False)
            yield Label(safe_text(self.prompt), classes="dialog-label", markup=False)
            yield CompletingInput(
                self.value,
                placeholder=self.placeholder,
                id="answer",
                select_on_focus=False,
                completer=self._complete_vault,
            )
            yield Label("", id="candidates", classes="dialog-candidates")
            yield Label("Enter: OK   Tab: complete   Esc: cancel", classes="dialog-hint")

    def _complete_vault(self, before: str) -> tuple[str, list[str]]:
        found = commands.complete(self.session, "cd " + before)
        hint = "no match" if not found else candidates_hint(found) if len(found) > 1 else ""
        self.query_one("#candidates", Label).update(as_text(hint))
        return commands.current_word(before), found
