"""Moving about: open, up, go to, bookmarks, search, the bottom input line, sort and selection keys."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from textual import on
from textual.widgets import Input

from vaultsh.service import commands
from vaultsh.tui.entries import ROLE_OBJECT, SORT_FIELDS, Entry
from vaultsh.tui.inspect import (
    InfoPanel,
)
from vaultsh.tui.listing import ListingScreen
from vaultsh.tui.panes import EntryList
from vaultsh.tui.screens import (
    KeyScreen,
)
from vaultsh.tui.viewer import ViewerScreen, chunks_reader
from vaultsh.vault.errors import FsError, VaultError


class NavigatingScreen(ListingScreen):
    """Keys that move the cursor or the shown directory, and the filter / command / search input."""

    # -- navigation ---------------------------------------------------------------------

    def action_switch_pane(self) -> None:
        self.active_side = "plain" if self.active_side == "cipher" else "cipher"
        self.focus_active()

    def on_entry_list_activated(self, message: EntryList.Activated) -> None:
        self._open(message.entry_list, message.entry)

    def action_open(self) -> None:
        lst = self.active_list()
        if lst.current is not None:
            self._open(lst, lst.current)

    def _open(self, lst: EntryList, entry: Entry) -> None:
        if entry.is_dir and entry.role == ROLE_OBJECT and entry.plain_name is not None:
            self.load_dir(self._child(entry.plain_name))
        elif entry.is_dir:
            self.vapp.log_line(
                f"{entry.cipher_name}: the name does not decrypt, so it cannot be opened", "error"
            )
        elif lst is self.plain and entry.role == ROLE_OBJECT and entry.plain_name is not None:
            self._view(self._child(entry.plain_name))
        else:
            self._inspect(lst is self.plain, entry)
            self.query_one("#info", InfoPanel).scroll_home(animate=False)

    def _view(self, path: str) -> None:
        """Enter on a file: read all of it in the viewer (a symlink: what it points to)."""
        session = self.session
        if session is None:
            return
        tree = session.tree
        try:
            node = commands.follow_tree_links(tree, path)
            if node.kind != "file":
                raise VaultError(f"/{node.plain}: not a regular file")
            size = tree.plain_stat(node).size
        except VaultError as e:
            self.vapp.log_line(str(e), "error")
            return
        read = chunks_reader(partial(tree.plain_chunks, node))
        self.app.push_screen(ViewerScreen(f"/{node.plain}", size, read))

    def action_up(self) -> None:
        if not self.cwd:
            return
        parent, _, name = self.cwd.rpartition("/")
        self.load_dir(parent, select=name)

    def action_refresh(self) -> None:
        current = self.plain.current
        self.load_dir(self.cwd, select=current.plain_name if current else None)

    # -- filter and command line ----------------------------------------------------------

    def action_filter(self) -> None:
        self._open_input("filter", self.filter_text, "filter by plain name")

    def action_jump(self) -> None:
        self._open_input(
            "jump", commands.show(self.cwd).rstrip("/") + "/", "go to a vault path (Tab completes)"
        )

    def _jump(self, typed: str) -> None:
        """Show the directory `typed`, or the directory of the file `typed` with it selected."""
        session = self.session
        if session is None:
            return
        try:
            words = commands.split_line(typed)  # a completed name comes quoted, as in the shell
        except ValueError as e:
            self.vapp.log_line(f"go to {typed}: {e}", "error")
            return
        target = session.resolve(words[0] if len(words) == 1 else typed)
        try:
            is_dir = session.tree.node(target).kind == "dir"
        except VaultError as e:
            # Said with the path as typed: the vault's message may name the cipher directory.
            reason = os.strerror(e.errno) if isinstance(e, FsError) else str(e)
            self.vapp.log_line(f"go to {commands.show(target)}: {reason}", "error")
            return
        if is_dir:
            self.load_dir(target)
        else:
            parent, _, name = target.rpartition("/")
            self.load_dir(parent, select=name)

    def _bookmark_rows(self) -> list[tuple[str, str]]:
        return [(key, commands.show(path)) for key, path in sorted(self.bookmarks.items())]

    def action_bookmark(self) -> None:
        here = self.cwd

        def chosen(key: str | None) -> None:
            if key is None:
                return
            if key == "'":
                self.vapp.log_line("' stands for the previous directory: pick another key", "error")
                return
            self.bookmarks[key] = here
            self.vapp.log_line(f"bookmark {key}: {commands.show(here)} (' {key} goes there)", "")

        hint = "Press a letter for this directory (it replaces that letter's bookmark); Esc cancels"
        self._ask(KeyScreen(f"Bookmark {commands.show(here)}", self._bookmark_rows(), hint), chosen)

    def action_goto_bookmark(self) -> None:
        rows = self._bookmark_rows()
        if self.previous_dir is not None:
            rows.append(("'", f"{commands.show(self.previous_dir)} (where you were)"))

        def chosen(key: str | None) -> None:
            if key is None:
                return
            target = self.previous_dir if key == "'" else self.bookmarks.get(key)
            if target is None:
                self.vapp.log_line(f"no bookmark {key} (b then a letter sets one)", "error")
                return
            self.load_dir(target)

        hint = "Press a bookmark's key; Esc cancels" if rows else "No bookmarks yet: b then a letter sets one"
        self._ask(KeyScreen("Go to a bookmark", rows, hint), chosen)

    def action_search(self) -> None:
        self._open_input("search", "", "find a name (Enter keeps it for n / N; Esc closes)")

    def action_search_next(self, forward: bool) -> None:
        if not self.search_text:
            self.vapp.log_line("nothing to find yet: f and a name first", "error")
            return
        self._find(self.search_text, self.plain.cursor + (1 if forward else -1), forward)

    def _find(self, text: str, start: int, forward: bool) -> None:
        """Put the plain cursor on the next (or previous) name containing `text`, wrapping."""
        needle = text.casefold()
        rows = self.plain.rows
        for step in range(len(rows)):
            row = (start + step if forward else start - step) % len(rows)
            if needle in (rows[row].plain_name or "").casefold():
                self.plain.move_to(row)
                return
        self.vapp.log_line(f"no name contains “{text}”", "error")

    def action_command_line(self) -> None:
        self._open_input("command", "", "command (help lists them; Esc closes)")

    def _open_input(self, mode: str, value: str, placeholder: str) -> None:
        box = self.query_one("#cmdline", Input)
        self.input_mode = mode
        box.placeholder = placeholder
        box.value = value
        box.border_title = {"filter": "/", "search": "f", "jump": "g"}.get(mode, ":")
        box.display = True
        # At once, not later as Widget.focus does: keys typed right after ":" (a paste, a fast
        # typist) are already queued and must go to the input, not run as pane keys.
        self.set_focus(box)

    def _close_input(self) -> None:
        box = self.query_one("#cmdline", Input)
        box.display = False
        self.focus_active()

    @on(Input.Changed, "#cmdline")
    def _input_changed(self, event: Input.Changed) -> None:
        if self.input_mode == "filter":
            self.filter_text = event.value
        elif self.input_mode == "search" and event.value:
            self._find(event.value, self.plain.cursor, True)

    @on(Input.Submitted, "#cmdline")
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value.strip()
        self._close_input()
        if self.input_mode == "command" and line:
            words = line.split()
            if words == ["recover"]:
                self.vapp.start_recovery()
            elif words[0] == "fsck" and len(words) <= 2 and not line.count("-"):
                from vaultsh.tui.fsck_screen import start_fsck

                session = self.session
                start_fsck(self.vapp, session.resolve(words[1]) if words[1:] and session else self.cwd)
            else:
                self.vapp.run_command(line, show_output=True)
        elif self.input_mode == "search":
            self.search_text = event.value
        elif self.input_mode == "jump" and line:
            self._jump(line)

    def action_escape(self) -> None:
        if self._close_input_cancelled():
            return
        if self.busy:
            self._cancel_command()
        elif self.filter_text:
            self.filter_text = ""

    def _close_input_cancelled(self) -> bool:
        """Close the bottom input as cancelled (a filter is cleared); False if it is not open."""
        box = self.query_one("#cmdline", Input)
        if not box.display:
            return False
        if self.input_mode == "filter":
            self.filter_text = ""
        self._close_input()
        return True

    def _cancel_command(self) -> None:
        self.vapp.io.cancel.set()
        self.vapp.log_line("cancelling…", "")

    def interrupt(self) -> None:
        """Ctrl-C: in the bottom input, what Esc does there (close it; what was typed is not
        run); else cancel the running command or listing; with nothing running, the quit
        dialog, as q."""
        if self._close_input_cancelled():
            return
        if self.busy:
            self._cancel_command()
        elif not self.cancel_listing():
            self.vapp.request_quit()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.focused is self.query_one("#cmdline", Input):
            event.stop()  # Input does not use Esc: it closes the input here
            self.action_escape()

    # -- order and hidden names -----------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        self.sort_by = SORT_FIELDS[(SORT_FIELDS.index(self.sort_by) + 1) % len(SORT_FIELDS)]
        self.vapp.remember_prefs()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.vapp.remember_prefs()

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        self.vapp.remember_prefs()

    def action_toggle_select(self) -> None:
        entry = self.plain.current
        if entry is None or entry.role != ROLE_OBJECT or entry.plain_name is None:
            return
        self.selection.toggle(entry.plain_name)
        self._show_selection()
        self.plain.move_to(self.plain.cursor + 1)  # as in mc: Insert marks and moves on

    def action_select_range(self) -> None:
        rows = [e.plain_name for e in self.plain.rows]
        self.selection.extend_to(rows, self.plain.cursor)
        self._show_selection()

    def action_invert_selection(self) -> None:
        self.selection.invert([e.plain_name for e in self.plain.rows if e.plain_name is not None])
        self._show_selection()
