"""o and E: a file copied into a private directory for $PAGER or $EDITOR (reverse mode: o, read-only)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from stat import S_ISREG
from typing import Any

from textual import work
from textual.app import App, SuspendNotSupported

from vaultsh.service import commands
from vaultsh.service.tempcopy import CHUNK, PrivateCopy, private_copy_from, program, save_back
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
        if self.vapp.busy:
            self.vapp.log_line("a command is still running (Esc cancels it)", "error")
            return
        if self.vapp.reverse is not None:
            self._page_in_view(variable)
            return
        vault = self.vapp.vault
        if vault is None:
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
        self._copy_for(vault, path, partial(vault.iter_file, path), variable)

    def _page_in_view(self, variable: str) -> None:
        """o in a reverse-mode folder: a private copy of the plain file (plain pane) or of the
        encrypted view's file as a reverse mount serves it (cipher pane), in $PAGER. Nothing is
        saved back: the view is read-only, and plain files are edited where they are."""
        view = self.vapp.reverse
        assert view is not None
        if variable != "PAGER":
            self.vapp.log_line(
                "E: a reverse-mode folder is read-only here (edit its plain files themselves); "
                "o shows a copy",
                "error",
            )
            return
        lst = self.active_list()
        entry = lst.current
        found = entry.view_entry if entry is not None else None
        if entry is None or found is None:
            self.vapp.log_line("select a file first", "error")
            return
        ve = found
        on_cipher = lst is self.cipher
        path = f"{self.view_dir}/{entry.cipher_name}".lstrip("/") if on_cipher else (ve.plain or "")
        if ve.kind != "file":
            self.vapp.log_line(f"/{path}: not a regular file", "error")
            return

        def plain() -> Iterator[bytes]:
            fd = view.open_plain(path)  # no symlink followed, no FIFO waited on
            try:
                if not S_ISREG(os.fstat(fd).st_mode):
                    raise VaultError(f"/{path}: not a regular file")
                while chunk := os.read(fd, CHUNK):
                    yield chunk
            finally:
                os.close(fd)

        self._copy_for(None, path, partial(view.iter_file, ve) if on_cipher else plain, variable)

    @work(thread=True, group="external")
    def _copy_for(
        self,
        vault: Vault | None,
        path: str,
        chunks: Callable[[], Iterable[bytes | memoryview]],
        variable: str,
    ) -> None:
        """The private copy of `path` from `chunks()` (in a worker: decrypting takes time), then
        the program on it."""
        try:
            copy = private_copy_from(path, chunks())
        except (VaultError, OSError) as e:
            reason = str(e) if isinstance(e, VaultError) else f"/{path}: {e.strerror or e}"
            self.app.call_from_thread(self.vapp.log_line, reason, "error")
            return
        self.app.call_from_thread(self._run_external, vault, copy, variable)

    def _run_external(self, vault: Vault | None, copy: PrivateCopy, variable: str) -> None:
        """`vault`: where an edit is saved back; None for a read-only copy."""
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
        if vault is None or variable != "EDITOR" or not copy.changed():
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
