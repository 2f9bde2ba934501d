"""File actions of the main screen: export and import (transfers), mkdir, rename, delete, conflict copies."""

from __future__ import annotations

import shlex
from pathlib import Path

from vaultsh.service import commands
from vaultsh.tui import conflict_actions
from vaultsh.tui.browser import BrowserScreen
from vaultsh.tui.entries import ROLE_BAD, Entry
from vaultsh.tui.screens import (
    ConfirmScreen,
    PromptScreen,
)
from vaultsh.tui.selection import (
    VaultDirPrompt,
    delete_selection,
    export_selection,
    move_selection,
    parse_vault_path,
)
from vaultsh.vault.display import quote_name, safe_text

# How `e` asks where one entry goes, by what the tree exports (Tree.exports): the dialog's title,
# its question and the progress bar's label, each with {path} for the entry's vault path.
EXPORT_WORDING = {
    "plain": ("Export", "Decrypt {path} to (local path):", "Exporting {path}"),
    "cipher": (
        "Export encrypted",
        "Write the encrypted view of {path} to (local path; :export / DEST for all):",
        "Writing the encrypted {path}",
    ),
}


class FileActions(BrowserScreen):
    """Keys that change or copy the shown entries, through the command registry."""

    def _conflict_entry(self) -> Entry | None:
        """The cipher pane's flagged entry under the cursor (a conflict copy, maybe), if it is active."""
        if not self.cipher_stored or self.active_list() is not self.cipher:
            return None
        entry = self.cipher.current
        return entry if entry is not None and entry.role == ROLE_BAD else None

    def _export_copy(self, entry: Entry) -> None:
        name, where = entry.cipher_name, self.cwd

        def go(dest: str | None) -> None:
            if dest:
                self.vapp.run_task(
                    safe_text(f"export the conflict copy {quote_name(name)} to {dest}"),
                    conflict_actions.export_task(where, name, dest),
                )

        prompt = f"Decrypt the conflict copy {quote_name(name)} into (local directory):"
        self._ask(PromptScreen("Export conflict copy", prompt, start_dir(), local="dir"), go)

    def _adopt_copy(self, entry: Entry) -> None:
        name, where = entry.cipher_name, self.cwd
        adopted: list[str] = []
        self.vapp.run_task(
            safe_text(f"adopt the conflict copy {quote_name(name)}"),
            conflict_actions.adopt_task(where, name, adopted.append),
            select=lambda: adopted[0] if adopted else None,
        )

    def _delete_copy(self, entry: Entry) -> None:
        name, where = entry.cipher_name, self.cwd
        what = "the directory and everything in it" if entry.is_dir else "it"
        question = (
            f"Delete the conflict copy {quote_name(name)}? This removes {what} from disk; "
            "it cannot be undone."
        )

        def go(yes: bool | None) -> None:
            if yes:
                self.vapp.run_task(
                    safe_text(f"delete the conflict copy {quote_name(name)}"),
                    conflict_actions.delete_task(where, name),
                )

        self._ask(ConfirmScreen("Delete conflict copy", question, yes="Delete", no="Keep"), go)

    def _neighbour_name(self, entry: Entry | None) -> str | None:
        """The plain name the cursor goes to once `entry` is gone: the next row, else the one
        before (so it stays where the person was working, not back at the top)."""
        rows = self.plain.rows
        row = self.plain.row_of(entry) if entry is not None else None
        if row is None:
            return None
        for near in (row + 1, row - 1):
            if 0 <= near < len(rows) and rows[near].plain_name is not None:
                return rows[near].plain_name
        return None

    def _selected_paths(self) -> list[str]:
        return [self._child(name) for name in sorted(self.selection.names)]

    def action_export(self) -> None:
        copy = self._conflict_entry()
        if copy is not None:
            self._export_copy(copy)
            return
        if self.selection.names and self.exports == "plain":
            paths = self._selected_paths()

            def go_many(dest: str | None) -> None:
                if dest:
                    self.selection.clear()
                    self._show_selection()
                    label = f"Exporting {len(paths)} entries"
                    self.vapp.run_task(
                        f"export {len(paths)} selected entries to {dest}",
                        export_selection(paths, dest),
                        transfer=label,
                    )

            prompt = f"Decrypt the {len(paths)} selected entries into (local directory):"
            self._ask(PromptScreen("Export selection", prompt, start_dir(), local="dir"), go_many)
            return
        path = self._selected_plain()
        if path is None:
            return
        title, prompt, progress = EXPORT_WORDING[self.exports]

        def go(dest: str | None) -> None:
            if dest:
                self.vapp.run_command(
                    f"export {_q('/' + path)} {_q(dest)}", transfer=progress.format(path=f"/{path}")
                )

        self._ask(PromptScreen(title, prompt.format(path=f"/{path}"), start_dir(), local="dir"), go)

    def action_import(self) -> None:
        def go(src: str | None) -> None:
            if src:
                self.vapp.run_command(f"import {_q(src)} {_q('/' + self.cwd)}", transfer=f"Importing {src}")

        self._ask(
            PromptScreen("Import", f"Encrypt into /{self.cwd} from (local file or dir):", local="any"), go
        )

    def action_mkdir(self) -> None:
        def go(name: str | None) -> None:
            if name:
                self.vapp.run_command(f"mkdir {_q(self._absolute(name))}", select=name.split("/")[0])

        self._ask(PromptScreen("New directory", f"Name of the new directory in /{self.cwd}:"), go)

    def action_rename(self) -> None:
        copy = self._conflict_entry()
        if copy is not None:
            self._adopt_copy(copy)
            return
        if self.selection.names and self.writable:
            self._move_selection()
            return
        path = self._selected_plain()
        if path is None:
            return
        old = path.rpartition("/")[2]

        def go(new: str | None) -> None:
            if new and new != old:
                self.vapp.run_command(
                    f"mv {_q('/' + path)} {_q(self._absolute(new))}", select=new.split("/")[-1]
                )

        self._ask(PromptScreen("Rename", f"New name for {old}:", old), go)

    def _move_selection(self) -> None:
        """`r` with a selection: move it all into one vault directory, in one task."""
        session = self.session
        if session is None:
            return
        paths, here = self._selected_paths(), self.cwd
        after = self._unselected_near_cursor()

        def go(typed: str | None) -> None:
            if not typed or not typed.strip():
                return
            dest = parse_vault_path(session, typed.strip(), here)
            moved: list[str] = []

            def done() -> str | None:
                # A refused or cancelled move keeps the selection and the cursor, to try
                # another destination.
                if not moved:
                    return None
                self.selection.clear()
                return after

            self.vapp.run_task(
                safe_text(f"move {len(paths)} selected entries into {commands.show(dest)}"),
                move_selection(paths, dest, moved.append),
                transfer=f"Moving {len(paths)} entries",
                select=done,
            )

        prompt = (
            f"Move the {len(paths)} selected entries into (a vault directory; "
            f"relative to {commands.show(here)}):"
        )
        start = commands.show(here).rstrip("/") + "/"
        self._ask(VaultDirPrompt("Move selection", prompt, start, session), go)

    def _unselected_near_cursor(self) -> str | None:
        """Where the cursor goes once the selection has moved away: the entry under it if that
        stays, else the nearest row below (then above) that is not selected."""
        rows, names = self.plain.rows, self.selection.names
        cursor = int(self.plain.cursor)
        for row in [cursor, *range(cursor + 1, len(rows)), *range(cursor - 1, -1, -1)]:
            if 0 <= row < len(rows):
                name: str | None = rows[row].plain_name
                if name is not None and name not in names:
                    return name
        return None

    def action_delete(self) -> None:
        copy = self._conflict_entry()
        if copy is not None:
            self._delete_copy(copy)
            return
        if self.selection.names and self.writable:
            paths = self._selected_paths()
            self.selection.clear()
            self._show_selection()
            self.vapp.run_task(f"delete {len(paths)} selected entries", delete_selection(paths))
            return
        path = self._selected_plain()
        if path is None:
            return
        entry = self.active_list().current
        what = "the directory and everything in it" if entry is not None and entry.is_dir else "the file"
        question = f"Delete /{path}? This removes {what} from the vault; it cannot be undone."

        after = self._neighbour_name(entry)

        def go(yes: bool | None) -> None:
            if yes:
                self.vapp.run_command(f"rm -r {_q('/' + path)}", select=after)

        self._ask(ConfirmScreen("Delete", question, yes="Delete", no="Keep"), go)


def _q(text: str) -> str:
    return shlex.quote(text)


def start_dir() -> str:
    """Where a local path prompt starts: the working directory, or home if that is gone."""
    try:
        return str(Path.cwd()) + "/"
    except OSError:
        return str(Path.home()) + "/"
