"""o and E: a file decrypted into a private directory and opened in $PAGER or $EDITOR."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from functools import partial
from stat import S_ISREG
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
from vaultsh.vault.vault import Vault


class ExternalPrograms(BrowserScreen):
    """The pager and editor keys; an edit is saved back after asking."""

    def action_external(self, variable: str) -> None:
        """o and E: the file decrypted into a private temporary directory, opened in $PAGER or
        $EDITOR with the screen handed over; an edit is saved back after asking; the copy is
        removed either way."""
        vault = self.vapp.vault
        if vault is None:
            self.vapp.log_line("the files of a reverse-mode folder are plain: open them directly", "error")
            return
        if self.vapp.busy:
            self.vapp.log_line("a command is still running (Esc cancels it)", "error")
            return
        path = self._selected_plain()
        if path is None:
            return
        try:
            path = commands.follow_links(vault, path)
            if not S_ISREG(vault.stat(path).mode):
                raise VaultError(f"/{path}: not a regular file")
        except VaultError as e:
            self.vapp.log_line(str(e), "error")
            return
        self._decrypt_for(vault, path, variable)

    @work(thread=True, group="external")
    def _decrypt_for(self, vault: Vault, path: str, variable: str) -> None:
        try:
            copy = private_copy(vault, path)
        except (VaultError, OSError) as e:
            reason = str(e) if isinstance(e, VaultError) else f"/{path}: {e.strerror or e}"
            self.app.call_from_thread(self.vapp.log_line, reason, "error")
            return
        self.app.call_from_thread(self._run_external, vault, copy, variable)

    def _run_external(self, vault: Vault, copy: PrivateCopy, variable: str) -> None:
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
        if variable != "EDITOR" or not copy.changed():
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
                partial(_save_and_remove, vault, copy),
                select=copy.path.rpartition("/")[2],
            )

        self._ask(ConfirmScreen("Save changes", question, yes="Save", no="Discard"), answered)


def _save_and_remove(vault: Vault, copy: PrivateCopy, session: commands.Session) -> int:
    """A task: the edited copy encrypted back over its file; the copy removed even on failure."""
    try:
        save_back(vault, copy)
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
