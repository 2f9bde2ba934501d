"""The fsck screen: the integrity check in a worker with progress, its findings, Enter jumps there."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from vaultsh.service import integrity
from vaultsh.service.commands.checks import cipher_files
from vaultsh.tui.entries import ROLE_OBJECT
from vaultsh.tui.safety import as_text
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import UsageError, VaultError
from vaultsh.vault.fsck import Counts, Finding

if TYPE_CHECKING:
    from vaultsh.tui.app import VaultApp
    from vaultsh.vault.vault import Vault

PROGRESS_EVERY = 0.1  # seconds between progress updates crossing to the UI thread


class _Stopped(Exception):
    """Raised from the progress callback to end a check the person cancelled."""


def finding_text(f: Finding) -> str:
    """One row: kind, where (plain path when known, else the cipher path), what; names escaped."""
    if f.plain_path is not None:
        where = quote_name("/" + f.plain_path)
    else:
        where = "cipher " + quote_name(f.cipher_path or ".")
    return f"{f.kind}: {where}: {safe_text(f.detail)}"


def counts_text(c: Counts) -> str:
    return f"{c.files} files, {c.dirs} dirs, {c.symlinks} symlinks"


class FsckScreen(ModalScreen[Finding | None]):
    """Runs fsck on a subtree and lists what it finds; Enter dismisses with the chosen finding."""

    DEFAULT_CSS = """
    FsckScreen { align: center middle; }
    FsckScreen > #fsck { width: 90%; height: 80%; border: thick $primary; background: $surface; }
    FsckScreen #fsck-title { text-style: bold; color: $primary; }
    FsckScreen #fsck-status { height: auto; }
    FsckScreen OptionList { height: 1fr; }
    FsckScreen #fsck-hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, vault: Vault, path: str) -> None:
        super().__init__()
        self.vault = vault
        self.path = path
        self.findings: list[Finding] = []
        self.done = False
        self.summary = ""
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="fsck"):
            yield Label(f"fsck {quote_name('/' + self.path)}", id="fsck-title", markup=False)
            yield Static("Checking…", id="fsck-status", markup=False)
            yield OptionList(id="fsck-findings", markup=False)
            yield Label("Enter: go to the entry   Esc: close (stops the check)", id="fsck-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._check()

    @work(thread=True, exclusive=True, group="fsck")
    def _check(self) -> None:
        last = 0.0

        def progress(c: Counts) -> None:
            nonlocal last
            if self._stop.is_set():
                raise _Stopped
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                self.app.call_from_thread(self._status, f"Checking… {counts_text(c)}")

        def found(f: Finding) -> None:
            self.app.call_from_thread(self._add, f)

        try:
            result = integrity.run_fsck(self.vault, self.path, on_finding=found, progress=progress)
        except _Stopped:
            return
        except (VaultError, OSError) as e:
            self.app.call_from_thread(self._finished, safe_text(f"fsck failed: {e}"))
            return
        self.app.call_from_thread(
            self._finished, integrity.summary_line(result).removeprefix("fsck summary: ")
        )

    def _status(self, text: str) -> None:
        if not self.done:
            self.query_one("#fsck-status", Static).update(as_text(text))

    def _add(self, f: Finding) -> None:
        self.findings.append(f)
        self.query_one(OptionList).add_option(Option(as_text(finding_text(f))))

    def _finished(self, summary: str) -> None:
        self.done = True
        self.summary = summary
        self.query_one("#fsck-status", Static).update(as_text(summary))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._stop.set()
        self.dismiss(self.findings[event.option_index])

    def action_close(self) -> None:
        self._stop.set()
        self.dismiss(None)


def start_fsck(app: VaultApp, path: str) -> None:
    """`F` and `:fsck [PATH]`: check the subtree, then go to the finding chosen with Enter."""
    session = app.session
    if session is None:
        app.log_line("fsck: needs an unlocked vault", "error")
        return
    try:
        vault = cipher_files(session, "fsck")
    except UsageError as e:
        app.log_line(str(e), "error")
        return
    screen = FsckScreen(vault, path)

    def chosen(f: Finding | None) -> None:
        app.main.focus_active()
        if screen.summary:
            app.log_line(f"fsck /{path}: {screen.summary}", "")
        if f is not None:
            jump_to(app, vault, f)

    app.push_screen(screen, chosen)


def jump_to(app: VaultApp, vault: Vault, f: Finding) -> None:
    """Show the finding's directory and put the cursor on its entry (plain pane if it has a name)."""
    parent_cipher, _, cipher_name = f.cipher_path.rpartition("/")
    if f.plain_path is not None and cipher_name and not _is_sidecar_or_meta(cipher_name):
        parent, _, name = f.plain_path.rpartition("/")
        app.main.load_dir(parent, select=name)
        return
    try:
        parent = vault.decrypt_cipher_path(parent_cipher)
    except (VaultError, OSError) as e:
        app.log_line(f"cannot show {f.cipher_path}: {e}", "error")
        return
    select_cipher_after_load(app, parent, cipher_name)


def _is_sidecar_or_meta(name: str) -> bool:
    return name.endswith(".name") or name.startswith("gocryptfs.")


def select_cipher_after_load(app: VaultApp, plain_dir: str, cipher_name: str) -> None:
    """Load `plain_dir`, then put the cipher pane's cursor on `cipher_name` and make it active."""
    main = app.main
    main.load_dir(plain_dir)
    opened = main.opened

    def try_select() -> None:
        if main.opened != opened:
            return  # another directory was opened meanwhile
        if main.dir_loading:
            app.set_timer(0.05, try_select)
            return
        for entry in main.cipher.all_entries:
            if entry.cipher_name == cipher_name:
                main.cipher.select(entry, notify=True)
                main.active_side = "cipher"
                main.focus_active()
                return
        plain = [e for e in main.plain.all_entries if e.role == ROLE_OBJECT]
        if not plain:
            app.log_line(f"{quote_name(cipher_name)}: not found in /{plain_dir}", "error")

    app.set_timer(0.05, try_select)
