"""o and E: a file copied into a private directory for $PAGER or $EDITOR (the cipher side: o, read-only)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SuspendNotSupported

from vaultsh.service import commands
from vaultsh.service.tempcopy import PrivateCopy, private_copy, program, save_back
from vaultsh.tui.browser import BrowserScreen
from vaultsh.tui.screens import (
    ConfirmScreen,
)
from vaultsh.vault.errors import VaultError
from vaultsh.vault.tree import Tree


class ExternalPrograms(BrowserScreen):
    """The pager and editor keys; an edit is saved back after asking."""

    def action_external(self, variable: str) -> None:
        """o and E: the file decrypted into a private temporary directory, opened in $PAGER or
        $EDITOR with the screen handed over; an edit is saved back after asking; the copy is
        removed either way."""
        if self.busy:
            self.vapp.log_line("a command is still running (Esc cancels it)", "error")
            return
        session = self.session
        if session is None:
            return
        tree = session.tree
        if variable == "EDITOR" and not tree.writable:
            self.vapp.log_line(commands.reverse_refusal("edit", self.vapp.cipherdir), "error")
            return
        if variable == "PAGER" and self.active_list() is self.cipher:
            self._page_cipher_file(tree)
            return
        path = self._selected_plain()
        if path is None:
            return
        try:
            node = commands.follow_tree_links(tree, path)
            if node.kind != "file":
                raise VaultError(f"/{node.plain}: not a regular file")
        except VaultError as e:
            self.vapp.log_line(str(e), "error")
            return
        self._copy_for(node.plain, partial(tree.plain_chunks, node), variable, editable=tree.writable)

    def _page_cipher_file(self, tree: Tree) -> None:
        """o on the cipher pane: a private copy of the file as the cipher side holds it (stored,
        or as a reverse mount serves it), in $PAGER; E there edits the plain file instead."""
        entry, directory = self.cipher.current, self.dir_node
        if entry is None or directory is None:
            self.vapp.log_line("select a file first", "error")
            return
        path = f"{directory.cipher_path}/{entry.cipher_name}".lstrip("/")
        if entry.kind != "file":
            self.vapp.log_line(f"/{path}: not a regular file", "error")
            return
        self._copy_for(
            path, partial(tree.cipher_chunks, directory, entry.cipher_name), "PAGER", editable=False
        )

    @work(thread=True, group="external")
    def _copy_for(
        self,
        path: str,
        chunks: Callable[[], Iterable[bytes | memoryview]],
        variable: str,
        *,
        editable: bool,
    ) -> None:
        """The private copy of `path` from `chunks()` (in a worker: decrypting takes time), then
        the program on it."""
        try:
            copy = private_copy(path, chunks())
        except (VaultError, OSError) as e:
            reason = str(e) if isinstance(e, VaultError) else f"/{path}: {e.strerror or e}"
            self.app.call_from_thread(self.vapp.log_line, reason, "error")
            return
        self.app.call_from_thread(self._run_external, copy, variable, editable)

    def _run_external(self, copy: PrivateCopy, variable: str, editable: bool) -> None:
        """`editable`: an edit is saved back into the session's vault; else the copy is read-only."""
        argv = [*program(variable), str(copy.file)]
        try:
            with suspended(self.app):
                subprocess.run(argv, check=False)
        except OSError as e:
            copy.remove()
            self.vapp.log_line(f"${variable} ({argv[0]}): {e.strerror or e}", "error")
            return
        finally:
            self.refresh()
        if not editable or variable != "EDITOR" or not copy.changed():
            copy.remove()
            if variable == "EDITOR":
                self.vapp.log_line(f"/{copy.path}: not changed", "")
            return
        question = (
            f"Save the changes to /{copy.path} ({copy.size():,} bytes)? "
            "This replaces its contents in the vault."
        )

        def answered(yes: bool | None) -> None:
            if not yes:
                copy.remove()
                self.vapp.log_line(f"/{copy.path}: changes discarded", "")
                return
            self.vapp.run_task(
                f"save /{copy.path} from ${variable}",
                partial(_save_and_remove, copy),
                select=copy.path.rpartition("/")[2],
            )

        self._ask(ConfirmScreen("Save changes", question, yes="Save", no="Discard"), answered)


def _save_and_remove(copy: PrivateCopy, session: commands.Session) -> int:
    """A task: the edited copy encrypted back over its file; the copy removed even on failure."""
    try:
        save_back(session.vault_for("edit"), copy)
    finally:
        copy.remove()
    session.io.write(f"saved /{copy.path}")
    return 0


@contextlib.contextmanager
def suspended(app: App[Any]) -> Iterator[None]:
    """The terminal handed to another program; where it cannot be (a test), the program runs
    beside the app."""
    try:
        with app.suspend():
            yield
    except SuspendNotSupported:
        yield
