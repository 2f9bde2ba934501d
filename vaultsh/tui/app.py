"""The vaultsh TUI: a two-pane browser of a vault's plain and cipher trees with linked cursors."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any, ClassVar, TypeVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, RichLog, Static
from textual.worker import get_current_worker

from vaultsh.service import commands, integrity
from vaultsh.service.passwords import SecretSource
from vaultsh.service.tempcopy import PrivateCopy, private_copy, program, save_back
from vaultsh.service.transfer import Cancelled
from vaultsh.tui import conflict_actions
from vaultsh.tui.completion import CompletingInput, candidates_hint
from vaultsh.tui.inspect import (
    InfoPanel,
    describe_cipher,
    describe_plain,
    describe_view_cipher,
    describe_view_plain,
)
from vaultsh.tui.layout import lower_height, too_small
from vaultsh.tui.panes import (
    ROLE_BAD,
    ROLE_OBJECT,
    ROLE_SIDECAR,
    SORT_FIELDS,
    CipherList,
    Entry,
    EntryList,
    PlainList,
    cipher_sort_key,
    is_hidden,
    link_targets,
    listing_digest,
    scan_cipher_dir,
    scan_view_dir,
    sort_plain,
)
from vaultsh.tui.prefs import Prefs, load_prefs, save_prefs
from vaultsh.tui.safety import SafeApp, as_text, cut_middle
from vaultsh.tui.screens import (
    ChoiceScreen,
    ConfirmScreen,
    HelpScreen,
    KeyScreen,
    PasswordScreen,
    PromptScreen,
    SecretScreen,
    TransferBar,
    describe_bindings,
)
from vaultsh.tui.selection import Selection, Task, delete_selection, export_selection, run_guarded
from vaultsh.tui.viewer import ViewerScreen, data_reader, read_local
from vaultsh.tui.watch import DirWatcher
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, ConfFile, load_config
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import ExitCode, FsError, VaultError
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

# Which plain name the cursor goes to after a command: a name, one the command makes known, or None.
Select = str | Callable[[], str | None] | None
STATUS_INTERVAL = 1.0  # seconds between mount status refreshes
STATUS_PATH_CELLS = 40  # the vault path in the status bar leaves room for the rest
LOG_KEEP = 2000  # lines of output kept
LOG_MIN_WIDTH = 20  # log lines wrap at the panel's width, down to this many cells
PROGRESS_INTERVAL = 0.1  # at most this often a progress update crosses to the UI thread

HELP_INTRO = (
    "Left: the plain tree (decrypted names). Right: the cipher tree (names on disk). Moving in "
    "one pane selects the same object in the other; its long-name .name sidecar and the "
    "directory's gocryptfs.diriv are marked ◆. Entries marked ! cannot be decrypted."
)
HELP_INTRO_REVERSE = (
    "A reverse-mode folder. Left: its plain files, the real ones. Right: the encrypted view a "
    "reverse mount shows (encrypted names, gocryptfs.conf, derived gocryptfs.diriv, long-name "
    ".name files), computed on the fly. Moving in one pane selects the same object in the "
    "other. The view is read-only: m mounts it, e writes it out (a backup); change the plain "
    "files themselves."
)
# Keys whose commands write into the vault: a reverse-mode folder's view is read-only, so there
# they leave the footer and the help, and pressing one says why (action -> command refused).
WRITE_ACTIONS = {"import": "import", "mkdir": "mkdir", "delete": "rm", "rename": "mv"}
REVERSE_TOOLTIPS = {
    "export": "write the encrypted view of the selection to a local path (a backup)",
    "mount": "mount the encrypted view read-only (asks the mountpoint)",
}
KEY_ADVICE = (
    "With this key the vault opens even if the password or gocryptfs.conf is lost. "
    "Write it on paper and keep it away from the vault."
)


# -- messages from worker threads ------------------------------------------------------------


_Opened = TypeVar("_Opened")


class DirBatch(Message):
    """A batch of entries of the directory being loaded."""

    def __init__(self, generation: int, entries: list[Entry]) -> None:
        super().__init__()
        self.generation = generation
        self.entries = entries


class DirLoaded(Message):
    """The whole directory, sorted for each pane."""

    def __init__(self, generation: int, plain: list[Entry], cipher: list[Entry], digest: bytes) -> None:
        super().__init__()
        self.generation = generation
        self.plain = plain
        self.cipher = cipher
        self.digest = digest  # listing_digest(cipher)


class DirFailed(Message):
    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class DirChanged(Message):
    """The shown directory changed on disk (a write through the mount, a sync tool)."""

    def __init__(self, last_change: float) -> None:
        super().__init__()
        self.last_change = last_change  # time.monotonic() of the last change seen


class TransferProgress(Message):
    """Bytes done of a running command's total (coalesced to a few per second)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total


# -- the command registry's IO, for commands running in a worker thread -----------------------


class TuiIO:
    """commands.SessionIO for the TUI: output to the log, questions as modal dialogs.

    Commands run in a thread worker; every call here crosses to the UI thread, and questions
    block the worker until the dialog is answered.
    """

    def __init__(self, app: VaultApp) -> None:
        self.app = app
        self.cancel = threading.Event()
        self._last_progress = 0.0
        self.output: list[str] | None = None  # a `:` command's output, kept for its panel

    def write(self, text: str) -> None:
        if self.output is not None:
            self.output.append(safe_text(text))
        self.app.on_ui_thread(self.app.log_line, text, "")

    def error(self, text: str) -> None:
        self.app.on_ui_thread(self.app.log_line, text, "error")

    def ask(self, screen: Screen[Any]) -> Any:
        """Show a modal screen from a worker thread and wait for its answer."""
        answered = threading.Event()
        box: list[Any] = []

        def done(result: Any) -> None:
            box.append(result)
            answered.set()

        self.app.call_from_thread(self.app.push_screen, screen, done)
        while not answered.wait(0.2):
            if not self.app.is_running:
                raise Cancelled()
        return box[0]

    def ask_secret(self, prompt: str) -> bytes:
        answer = self.ask(PasswordScreen[bytes]("vaultsh", prompt.rstrip(": ")))
        if not isinstance(answer, bytes):
            raise Cancelled()
        return answer

    def confirm(self, question: str) -> bool:
        return bool(self.ask(ConfirmScreen("Please confirm", question)))

    def choose(self, question: str, choices: list[tuple[str, str]]) -> str:
        """commands.Chooser: a button per choice, its key the label's first letter; Esc cancels."""
        buttons = [(value, label[0].lower(), label) for value, label in choices]
        answer = self.ask(ChoiceScreen("Please choose", question, buttons, default=choices[-1][0]))
        return str(answer) if answer is not None else "cancel"

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL or (total and done >= total):
            self._last_progress = now
            self.app.post_message(TransferProgress(done, total))

    def cancelled(self) -> bool:
        return self.cancel.is_set()


# -- the main screen ---------------------------------------------------------------------------


class MainScreen(Screen[None]):
    """Plain pane, cipher pane, info panel, log, command line and status bar."""

    # Help and Quit come first: the footer shows keys in this order and cuts what does not fit.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", tooltip="this help"),
        Binding("f10,q", "quit_app", "Quit", tooltip="quit (asks to unmount if mounted)"),
        Binding("tab", "switch_pane", "Pane", tooltip="switch between the plain and cipher pane"),
        Binding("enter,l,right", "open", "Open", tooltip="open a directory / preview a file"),
        Binding("backspace,h,left", "up", "Up", tooltip="go to the parent directory"),
        Binding("slash", "filter", "Filter", tooltip="filter by plain name as you type (Esc clears)"),
        Binding(
            "g",
            "jump",
            "Go to",
            show=False,
            tooltip="go to a vault path (Tab completes; a file: its directory)",
        ),
        Binding(
            "b",
            "bookmark",
            "Mark",
            show=False,
            tooltip="bookmark this directory under a letter (this session)",
        ),
        Binding(
            "apostrophe",
            "goto_bookmark",
            "Marks",
            show=False,
            tooltip="go to a bookmark; ' again: back where you were",
        ),
        Binding("f", "search", "Find", show=False, tooltip="find a name as you type; n / N: next / previous"),
        Binding("n", "search_next(True)", "Next", show=False, tooltip="next name found"),
        Binding("N", "search_next(False)", "Previous", show=False, tooltip="previous name found"),
        Binding("f5,e", "export", "Export", tooltip="export (decrypt) the selection to a local path"),
        Binding("f6,i", "import", "Import", tooltip="import (encrypt) a local file or tree here"),
        Binding("f7,M", "mkdir", "Mkdir", tooltip="make a directory"),
        Binding("f8,d", "delete", "Delete", tooltip="delete the selection (asks first)"),
        Binding("r", "rename", "Rename", tooltip="rename or move the selection"),
        Binding(
            "o", "external('PAGER')", "Pager", show=False, tooltip="read the file in $PAGER (a private copy)"
        ),
        Binding(
            "E",
            "external('EDITOR')",
            "Edit",
            show=False,
            tooltip="edit the file in $EDITOR (a private copy, saved back after asking)",
        ),
        Binding(
            "space,insert",
            "toggle_select",
            "Select",
            show=False,
            tooltip="select or unselect the entry; export and delete then act on all selected",
        ),
        Binding(
            "v", "select_range", "Range", show=False, tooltip="select from the last selected entry to here"
        ),
        Binding("asterisk", "invert_selection", "Invert", show=False, tooltip="invert the selection"),
        Binding("s", "cycle_sort", "Sort", show=False, tooltip="sort by name, size or modification time"),
        Binding("S", "reverse_sort", "Reverse", show=False, tooltip="reverse the sort order"),
        Binding(
            "full_stop", "toggle_hidden", "Hidden", show=False, tooltip="show or hide names starting with ."
        ),
        Binding("m", "mount", "Mount", tooltip="mount the vault with FUSE (asks the mountpoint)"),
        Binding("u", "unmount", "Unmount", tooltip="unmount this vault (also clears a stale mount)"),
        Binding("p", "passwd", "Passwd", show=False, tooltip="change the vault password"),
        Binding("F", "fsck", "Fsck", show=False, tooltip="check this directory's tree for damage (fsck)"),
        Binding(
            "K", "masterkey", "Master key", show=False, tooltip="show the master key (asks the password)"
        ),
        Binding("I", "vault_info", "Info", show=False, tooltip="show the vault's config summary"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip="reload the directory"),
        Binding("t", "cycle_theme", "Theme", show=False, tooltip="next colour theme"),
        Binding("f2,colon", "command_line", "Cmd", tooltip="command line (same commands as the shell)"),
        Binding("escape", "escape", "Cancel", show=False, tooltip="cancel a transfer, clear the filter"),
    ]

    # keys handled by the list widgets, listed in the help too
    LIST_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ / k, ↓ / j", "move the cursor"),
        ("PgUp / PgDn", "move a page"),
        ("Home, End / G", "first / last entry"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cwd = ""  # plain path of the shown directory, "" is the root
        self.cdir: Path | None = None  # its cipher path
        self.view_dir: str | None = None  # reverse mode: its path in the encrypted view
        self.generation = 0  # of the listing under way: older results are dropped
        self.opened = 0  # directories shown so far (a background reload is not one)
        self.loading = False  # True while a directory streams in
        self.load_failed = False  # the last listing failed (its error is in the log)
        self.loaded_rows = 0
        self.cipher_by_name: dict[str, Entry] = {}
        self.filter_text = ""
        self.search_text = ""  # what f found last; n and N find it again
        self.input_mode = "command"  # what the bottom input is for: "command" or "filter"
        self._select_after_load: str | None = None
        self._moved_while_loading = False  # the cursor was moved by hand during a load
        self.active_side = "plain"
        self.selection = Selection()
        self.sort_by = "name"  # one of SORT_FIELDS
        self.sort_reverse = False
        self.show_hidden = True  # names starting with "." (`.` toggles)
        # Bookmarks (letter -> plain dir) live only as long as the session: a list of decrypted
        # directory names saved in the clear would give away what the vault hides.
        self.bookmarks: dict[str, str] = {}
        self.previous_dir: str | None = None  # where ' ' goes back to
        self.watcher: DirWatcher | None = None  # reloads the listing when the directory changes
        self.quiet_generation = -1  # the generation of a background reload (auto-refresh)
        self.listed_at = 0.0  # time.monotonic() when the latest listing started
        self.shown_digest = b""  # listing_digest of the entries in the panes
        self._changed_during_load = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            with Vertical(id="plain-pane", classes="pane"):
                yield Static("", id="plain-header", classes="pane-header")
                yield PlainList(id="plain")
            with Vertical(id="cipher-pane", classes="pane"):
                yield Static("", id="cipher-header", classes="pane-header")
                yield CipherList(id="cipher")
        with Horizontal(id="lower"):
            yield InfoPanel(id="info")
            # min_width: RichLog renders at least 78 cells wide and crops, which cut long lines.
            yield RichLog(id="log", wrap=True, markup=False, max_lines=LOG_KEEP, min_width=LOG_MIN_WIDTH)
        yield TransferBar(id="transfer")
        yield CompletingInput(
            id="cmdline",
            placeholder="command (help lists them)",
            completer=self._complete_input,
            on_candidates=lambda found: self.vapp.log_line(candidates_hint(found), ""),
        )
        yield Static("", id="status")
        yield Static("", id="too-small")
        yield Footer(compact=True)  # every key fits on a 120-column terminal

    def on_mount(self) -> None:
        self.query_one("#transfer", TransferBar).display = False
        self.query_one("#cmdline", Input).display = False
        self.query_one("#plain-pane").border_title = "Plain"
        self.query_one("#cipher-pane").border_title = "Cipher"
        self.query_one("#info", InfoPanel).border_title = "Info"
        log = self.query_one("#log", RichLog)
        log.border_title = "Log"
        log.can_focus = False  # Tab moves between the panes only
        self.query_one("#info", InfoPanel).can_focus = False
        # Focus once laid out: a zero-size widget gets a Hide event, which moves the focus on.
        self.call_after_refresh(self.focus_active)
        self.watcher = DirWatcher(self._dir_changed)
        self.vapp.start()

    @property
    def plain(self) -> PlainList:
        return self.query_one("#plain", PlainList)

    @property
    def cipher(self) -> CipherList:
        return self.query_one("#cipher", CipherList)

    @property
    def vapp(self) -> VaultApp:
        app = self.app
        assert isinstance(app, VaultApp)
        return app

    def active_list(self) -> EntryList:
        """The pane the person works in: changed by Tab and by moving in a pane, not by relayouts."""
        return self.cipher if self.active_side == "cipher" else self.plain

    def focus_active(self) -> None:
        self.set_focus(self.active_list())  # at once: the next queued key goes to the pane

    def on_resize(self, event: events.Resize) -> None:
        notice = too_small(event.size)
        self.set_class(notice is not None, "too-small")
        self.query_one("#too-small", Static).update(as_text(notice or ""))
        self.query_one("#lower").styles.height = lower_height(event.size.height)
        self.call_after_refresh(self.update_headers)
        self.call_after_refresh(self._update_titles)
        self.call_after_refresh(self.vapp.update_status)

    def update_headers(self) -> None:
        for lst, header_id in ((self.plain, "#plain-header"), (self.cipher, "#cipher-header")):
            width = lst.scrollable_content_region.width
            if width > 0:
                self.query_one(header_id, Static).update(as_text(lst.header(width)))

    # -- loading directories ------------------------------------------------------------

    def load_dir(self, path: str, select: str | None = None) -> None:
        """Show the plain directory `path`; `select` is a plain name to put the cursor on."""
        view = self.vapp.reverse
        if view is not None:
            try:
                found = commands.view_entry(view, path)
                if found.kind != "dir":
                    raise VaultError(f"/{path}: not a directory")
            except VaultError as e:
                self.vapp.log_line(str(e), "error")
                return
            self._start_load(path, select)
            self.view_dir = found.cipher_path
            self._watch(view.plaindir / path)
            self._update_titles()
            cipher_dir = found.cipher_path
            self._scan(
                self.generation,
                lambda cancelled: scan_view_dir(view, cipher_dir, path, cancelled=cancelled),
            )
            return
        vault = self.vapp.vault
        if vault is None:
            return
        try:
            cdir = vault.cipher_path(path)
        except VaultError as e:
            self.vapp.log_line(str(e), "error")
            return
        self._start_load(path, select)
        self.cdir = cdir
        self._watch(cdir)
        self._update_titles()
        self._scan(self.generation, lambda cancelled: scan_cipher_dir(vault, cdir, cancelled=cancelled))

    def _start_load(self, path: str, select: str | None) -> None:
        if path != self.cwd:
            self.selection.clear()  # a selection belongs to one directory
            self.previous_dir = self.cwd
        self.generation += 1
        self.opened += 1
        self.listed_at = time.monotonic()
        self.shown_digest = b""
        self.cwd = path
        self.loading = True
        self.load_failed = False
        self.loaded_rows = 0
        self.cipher_by_name = {}
        self._select_after_load = select
        self._moved_while_loading = False
        self.plain.clear()
        self.cipher.clear()
        self.vapp.sync_session_cwd(path)

    def _watch(self, directory: Path) -> None:
        if self.watcher is not None:
            self.watcher.watch(directory)

    def _rescan(self, generation: int) -> None:
        """List the shown directory again under `generation` (nothing is cleared here)."""
        view, vault = self.vapp.reverse, self.vapp.vault
        if view is not None and self.view_dir is not None:
            cipher_dir, plain_dir = self.view_dir, self.cwd
            self._scan(
                generation, lambda cancelled: scan_view_dir(view, cipher_dir, plain_dir, cancelled=cancelled)
            )
        elif vault is not None and self.cdir is not None:
            cdir = self.cdir
            self._scan(generation, lambda cancelled: scan_cipher_dir(vault, cdir, cancelled=cancelled))

    def reload_quietly(self) -> None:
        """The auto-refresh: list the shown directory again in the background and swap the
        result in when it is complete, the cursors on the same entries; the panes stay as they
        are meanwhile (no flicker, no "loading…")."""
        self.generation += 1
        self.quiet_generation = self.generation
        self.listed_at = time.monotonic()
        self._rescan(self.generation)

    def _dir_changed(self, last_change: float) -> None:
        self.post_message(DirChanged(last_change))  # from the watcher's thread

    def on_dir_changed(self, message: DirChanged) -> None:
        if self.vapp.session is None or self.vapp.busy:
            return  # a running command reloads the listing when it ends
        if message.last_change < self.listed_at:
            return  # listed since (after a command of our own, say): that listing has it
        if self.loading or self.generation == self.quiet_generation:
            self._changed_during_load = True  # that listing may have missed it: once more after
            return
        self.reload_quietly()

    def _swap_in(self, plain: list[Entry], cipher: list[Entry], digest: bytes) -> None:
        """A background reload's result: replace the rows, keep the cursors and the selection."""
        if digest == self.shown_digest:
            return  # nothing changed that the panes show (a change undone, say)
        self.shown_digest = digest
        on_plain, on_cipher = self.plain.current, self.cipher.current
        # In place: the filter's closures hold this dict.
        self.cipher_by_name.clear()
        self.cipher_by_name.update((e.cipher_name, e) for e in cipher)
        self.plain.replace(plain)
        self.cipher.replace(cipher)
        if on_plain is not None:
            self.plain.select(next((e for e in self.plain.rows if e.plain_name == on_plain.plain_name), None))
        if on_cipher is not None:
            self.cipher.select(self.cipher_by_name.get(on_cipher.cipher_name))
        self.selection.keep_only({e.plain_name for e in plain if e.plain_name is not None})
        self._show_selection()
        self._relink(self.active_list())

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.close()

    @work(thread=True, exclusive=True, group="listing")
    def _scan(self, generation: int, batches: Callable[[Callable[[], bool]], Iterator[list[Entry]]]) -> None:
        """Stream a directory's entries to the panes; `batches(cancelled)` yields them."""
        worker = get_current_worker()
        everything: list[Entry] = []
        try:
            for batch in batches(lambda: worker.is_cancelled):
                everything.extend(batch)
                self.post_message(DirBatch(generation, batch))
        except VaultError as e:
            self.post_message(DirFailed(generation, str(e)))
            return
        except OSError as e:  # the directory vanished or turned unreadable while listed
            self.post_message(DirFailed(generation, f"/{self.cwd}: cannot list: {e.strerror or e}"))
            return
        if not worker.is_cancelled:
            self._post_loaded(generation, everything)

    def _post_loaded(self, generation: int, everything: list[Entry]) -> None:
        plain = sort_plain([e for e in everything if e.role == ROLE_OBJECT], self.sort_by, self.sort_reverse)
        cipher = sorted(everything, key=cipher_sort_key)
        self.post_message(DirLoaded(generation, plain, cipher, listing_digest(cipher)))

    def on_dir_batch(self, message: DirBatch) -> None:
        if message.generation != self.generation or message.generation == self.quiet_generation:
            return  # stale, or a background reload: swapped in whole once loaded
        first = self.loaded_rows == 0
        self.loaded_rows += len(message.entries)
        for e in message.entries:
            self.cipher_by_name[e.cipher_name] = e
        self.plain.append([e for e in message.entries if e.role == ROLE_OBJECT])
        self.cipher.append(message.entries)
        self._update_titles()
        if first:
            self.update_headers()
            self._relink(self.active_list())

    def on_dir_loaded(self, message: DirLoaded) -> None:
        if message.generation != self.generation:
            return
        if self._changed_during_load:
            self._changed_during_load = False
            self.call_later(self.reload_quietly)
        if message.generation == self.quiet_generation:
            self.quiet_generation = -1
            self._swap_in(message.plain, message.cipher, message.digest)
            return
        self.loading = False
        self.shown_digest = message.digest
        self.plain.replace(message.plain)
        self.cipher.replace(message.cipher)
        if self.filter_text:
            self._apply_filter()
        wanted = self._select_after_load
        self._select_after_load = None
        if not self._moved_while_loading:
            # Batches arrive in disk order; once sorted, start at the top unless told otherwise.
            self.plain.move_to(0, notify=False)
            self.cipher.move_to(0, notify=False)
        if wanted is not None:
            for e in message.plain:
                if e.plain_name == wanted:
                    self.plain.select(e)
                    break
        self.selection.keep_only({e.plain_name for e in message.plain if e.plain_name is not None})
        self._show_selection()
        self._update_titles()
        self.update_headers()
        self._relink(self.active_list())

    def on_dir_failed(self, message: DirFailed) -> None:
        if message.generation != self.generation:
            return
        if message.generation == self.quiet_generation:  # the directory went away, say
            self.quiet_generation = -1
            self.shown_digest = b""
            self.plain.clear()
            self.cipher.clear()
            self.cipher_by_name.clear()
        self.loading = False
        self.load_failed = True
        self.vapp.log_line(message.error, "error")
        self.query_one("#info", InfoPanel).show("Error", Text(safe_text(message.error), style="bold red"))
        self._update_titles()

    def _update_titles(self) -> None:
        if self.vapp.session is None:
            return  # still locked: nothing is listed yet, so nothing to say about it
        plain_pane = self.query_one("#plain-pane")
        cipher_pane = self.query_one("#cipher-pane")
        plain_pane.border_title = _pane_title(plain_pane, "Plain", f"/{self.cwd}")
        vault = self.vapp.vault
        if self.vapp.reverse is not None and self.view_dir is not None:
            cipher_pane.border_title = _pane_title(cipher_pane, "Encrypted view", f"/{self.view_dir}")
        elif vault is not None and self.cdir is not None:
            rel = self.cdir.relative_to(vault.cipherdir).as_posix()
            label = shorten_path(self.vapp.cipherdir_label, STATUS_PATH_CELLS)
            where = label + ("" if rel == "." else f"/{rel}")
            cipher_pane.border_title = _pane_title(cipher_pane, "Cipher", where)
        shown_plain = len(self.plain.rows)
        if self.loading:
            plain_pane.border_subtitle = as_text(f"loading… {self.loaded_rows:,} names")
            cipher_pane.border_subtitle = as_text(f"loading… {self.loaded_rows:,}")
            self.plain.set_placeholder("loading…" if not self.loaded_rows else "")
            self.cipher.set_placeholder("")
            return
        bad = sum(1 for e in self.cipher.all_entries if e.role == "bad")
        if shown_plain:
            self.plain.set_placeholder("")
        elif self.load_failed:
            self.plain.set_placeholder("(cannot list this directory: see the log)")
        elif self.filter_text and self.plain.all_entries:
            self.plain.set_placeholder(f"(no name contains “{self.filter_text}”: Esc clears the filter)")
        elif bad:
            self.plain.set_placeholder("(no name here decrypts: see the cipher pane)")
        else:
            self.plain.set_placeholder("(empty directory)")
        self.cipher.set_placeholder("" if self.cipher.rows or self.load_failed else "(nothing here)")
        flt = f"  filter: {self.filter_text}" if self.filter_text else ""
        if self.selection.names:
            flt += f"  {len(self.selection.names)} selected"
        if self.sort_by != "name" or self.sort_reverse:
            flt += f"  by {self.sort_by}{' ↓' if self.sort_reverse else ''}"
        if not self.show_hidden:
            flt += "  .hidden"
        # As Text: the filter is typed text ("[b" is no markup).
        count = f"{shown_plain:,} {'entry' if shown_plain == 1 else 'entries'}"
        plain_pane.border_subtitle = as_text(count + flt)
        where = "in the view" if self.vapp.reverse is not None else "on disk"
        cipher_pane.border_subtitle = as_text(
            f"{len(self.cipher.all_entries):,} {where}" + (f", {bad} undecryptable" if bad else "")
        )

    # -- linked cursors and the info panel -------------------------------------------------

    def on_entry_list_highlighted(self, message: EntryList.Highlighted) -> None:
        source = message.entry_list
        if message.entry is not source.current:
            return  # stale: the rows changed (a batch, a sort, a filter) since it was sent
        if message.moved:
            self.active_side = "cipher" if source is self.cipher else "plain"
            if self.loading:
                self._moved_while_loading = True
        self._relink(source)

    def _relink(self, source: EntryList) -> None:
        """Move the other pane's cursor to the same object and mark what belongs with it."""
        entry = source.current
        if entry is None:
            self.query_one("#info", InfoPanel).show("Info", Text("(empty directory)", style="dim"))
            return
        if source is self.plain:
            self.cipher.select(entry)
            self.cipher.set_marked(link_targets(entry, self.cipher_by_name))
        else:
            target = entry
            if entry.role == ROLE_SIDECAR and entry.owner_name is not None:
                target = self.cipher_by_name.get(entry.owner_name, entry)
            if target.role == ROLE_OBJECT:
                self.plain.select(target)
            else:
                self.plain.unlink_cursor()
            marks = link_targets(target, self.cipher_by_name) if target.role == ROLE_OBJECT else []
            if target is not entry:
                marks.append(target)
            self.cipher.set_marked(marks)
        self._inspect(source is self.plain, entry)

    def _inspect(self, plain_side: bool, entry: Entry) -> None:
        view, view_dir = self.vapp.reverse, self.view_dir
        if view is not None:
            if view_dir is not None:
                self._describe_view(plain_side, view, view_dir, self._child(entry.plain_name or ""), entry)
            return
        vault, cdir = self.vapp.vault, self.cdir
        if vault is None or cdir is None:
            return
        self._describe(plain_side, vault, cdir, self._child(entry.plain_name or ""), entry)

    def _child(self, name: str) -> str:
        return f"{self.cwd}/{name}" if self.cwd else name

    def _absolute(self, name: str) -> str:
        """`name` in the shown directory as an absolute vault path: commands resolve a relative
        path against the session's directory, which already is the shown one."""
        return "/" + self._child(name)

    @work(thread=True, exclusive=True, group="info")
    def _describe(self, plain_side: bool, vault: Vault, cdir: Path, path: str, entry: Entry) -> None:
        if plain_side:
            title = f"Preview  {entry.plain_name}"
            body = _described(lambda: describe_plain(vault, path, cdir, entry))
        else:
            title = f"X-ray  {entry.cipher_name}"
            body = _described(lambda: describe_cipher(vault, cdir, entry))
            if entry.role == ROLE_BAD and not get_current_worker().is_cancelled:
                # `path` is the shown directory plus the entry's (missing) plain name.
                body = Group(body, self._comparison(vault, path.rpartition("/")[0], entry))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.query_one("#info", InfoPanel).show, title, body)

    def _comparison(self, vault: Vault, plain_dir: str, entry: Entry) -> RenderableType:
        """For a conflict copy: both sides side by side; nothing for another undecryptable name."""
        try:
            copy = integrity.conflict_copy(vault, plain_dir, entry.cipher_name)
        except (VaultError, OSError):
            return Text("")
        try:
            both = integrity.sides(vault, copy)
        except (VaultError, OSError) as e:
            return Text(safe_text(f"Compare: {e}"))
        keys = Text("e: export the copy   r: adopt it under a plain name   d: delete it", style="dim")
        return Group(
            Text("\nCompared with the original", style="bold"),
            conflict_actions.compare_view(copy, both),
            keys,
        )

    @work(thread=True, exclusive=True, group="info")
    def _describe_view(
        self, plain_side: bool, view: ReverseView, view_dir: str, path: str, entry: Entry
    ) -> None:
        if plain_side:
            title = f"Preview  {entry.plain_name}"
            body = _described(lambda: describe_view_plain(view, path, entry))
        else:
            title = f"X-ray  {entry.cipher_name}"
            body = _described(lambda: describe_view_cipher(view, view_dir, entry))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.query_one("#info", InfoPanel).show, title, body)

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

    def _view(self, path: str) -> None:
        """Enter on a file: read all of it in the viewer (a symlink: what it points to)."""
        vault, view = self.vapp.vault, self.vapp.reverse
        try:
            if view is not None:
                plain = view.plaindir / path
                size = plain.stat().st_size
                read = partial(read_local, plain)
            else:
                assert vault is not None
                path = commands.follow_links(vault, path)
                stat = vault.stat(path)
                if not S_ISREG(stat.mode):
                    raise VaultError(f"/{path}: not a regular file")
                size = stat.size
                read = partial(vault.read_file, path)
        except (VaultError, OSError) as e:
            self.vapp.log_line(
                str(e) if isinstance(e, VaultError) else f"/{path}: {e.strerror or e}", "error"
            )
            return
        self.app.push_screen(ViewerScreen(f"/{path}", size, lambda offset, n: read(offset, n)))

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
        session = self.vapp.session
        if session is None:
            return
        try:
            words = commands.split_line(typed)  # a completed name comes quoted, as in the shell
        except ValueError as e:
            self.vapp.log_line(f"go to {typed}: {e}", "error")
            return
        target = session.resolve(words[0] if len(words) == 1 else typed)
        view, vault = self.vapp.reverse, self.vapp.vault
        try:
            if view is not None:
                is_dir = commands.view_entry(view, target).kind == "dir"
            else:
                assert vault is not None
                is_dir = S_ISDIR(vault.stat(target).mode)
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

    def _complete_input(self, before: str) -> tuple[str, list[str]]:
        """Tab in the bottom input: a filter completes to names here, a command line as the
        shell completes it (command names, decrypted names, local paths)."""
        if self.input_mode in ("filter", "search"):
            needle = before.casefold()
            names = [e.plain_name for e in self.plain.all_entries if e.plain_name is not None]
            return before, sorted(n for n in names if n.casefold().startswith(needle))
        session = self.vapp.session
        if session is None:
            return before, []
        if self.input_mode == "jump":  # a path alone: it completes as ls's argument does
            return commands.current_word(before), commands.complete(session, "ls " + before)
        return commands.current_word(before), commands.complete(session, before)

    @on(Input.Changed, "#cmdline")
    def _input_changed(self, event: Input.Changed) -> None:
        if self.input_mode == "filter":
            self.filter_text = event.value
            self._apply_filter()
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

                session = self.vapp.session
                start_fsck(self.vapp, session.resolve(words[1]) if words[1:] and session else self.cwd)
            else:
                self.vapp.run_command(line, show_output=True)
        elif self.input_mode == "search":
            self.search_text = event.value
        elif self.input_mode == "jump" and line:
            self._jump(line)

    def _apply_filter(self) -> None:
        needle = self.filter_text.casefold()
        hide = not self.show_hidden
        if not needle and not hide:
            self.plain.set_filter(None)
            self.cipher.set_filter(None)
        else:
            matches: Callable[[Entry], bool] = lambda e: (  # noqa: E731
                e.plain_name is not None and needle in e.plain_name.casefold() and not (hide and is_hidden(e))
            )
            owners = self.cipher_by_name

            def cipher_keep(e: Entry) -> bool:
                if e.role == ROLE_SIDECAR and e.owner_name in owners:
                    return matches(owners[e.owner_name])
                return e.role != ROLE_OBJECT or matches(e)

            self.plain.set_filter(matches)
            self.cipher.set_filter(cipher_keep)
        self._update_titles()
        self._relink(self.plain)

    def action_escape(self) -> None:
        box = self.query_one("#cmdline", Input)
        if box.display:
            if self.input_mode == "filter":
                self.filter_text = ""
                self._apply_filter()
            self._close_input()
        elif self.vapp.busy:
            self.vapp.io.cancel.set()
            self.vapp.log_line("cancelling…", "")
        elif self.filter_text:
            self.filter_text = ""
            self._apply_filter()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.focused is self.query_one("#cmdline", Input):
            event.stop()  # Input does not use Esc: it closes the input here
            self.action_escape()

    def intercept_key(self, event: Any) -> bool:
        """Handle a key before the app looks up its binding; True if it is dealt with.

        Called by the app, where a key arrives last: keys bubble up asynchronously, so by then
        the focus is what the keys before it made it. Two cases:
        - Keys typed right after ":" or "/" (a fast typist, a script) were on their way to the
          pane when the input opened. The input stops the printable keys it gets itself, so a
          printable one arriving here is such a key, and goes into the input (its binding would
          run a pane action: "m" would mount). Enter and Backspace need nothing: bindings are
          looked up from the focus, which is now the input.
        - A key whose action does not apply now is left out of the footer and not run
          (check_action); say why instead of doing nothing.
        """
        box = self.query_one("#cmdline", Input)
        if self.focused is box:
            if event.is_printable and event.character:
                box.insert_text_at_cursor(event.character)
                return True
            return False
        action = self._action_of_key(event.key)
        reason = self.unavailable(action) if action is not None else None
        if reason is None:
            return False
        self.vapp.log_line(reason, "error")
        return True

    # -- which keys apply --------------------------------------------------------------------

    @classmethod
    def _action_of_key(cls, key: str) -> str | None:
        for b in cls.BINDINGS:
            if isinstance(b, Binding) and key in (k.strip() for k in b.key.split(",")):
                return b.action
        return None

    def unavailable(self, action: str) -> str | None:
        """Why `action` does not apply now, or None if it does."""
        vapp = self.vapp
        if action in WRITE_ACTIONS and vapp.reverse is not None:
            return commands.reverse_refusal(WRITE_ACTIONS[action], vapp.cipherdir)
        info = vapp.mount_info
        if action == "unmount" and info is None:
            return "not mounted (m mounts it)"
        if action == "mount" and info is not None and not info.alive:
            # Mounting anew would drop the stale mount's record, and `u` could not clear it.
            return f"the mount at {info.mountpoint} is stale (its worker is gone): press u to clear it first"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that do not apply now leave the footer (intercept_key says why if pressed)."""
        return self.unavailable(action) is None

    # -- actions through the command registry ---------------------------------------------

    def _selected_plain(self) -> str | None:
        entry = self.active_list().current
        if entry is None or entry.role != ROLE_OBJECT or entry.plain_name is None:
            self.vapp.log_line(
                "select a vault entry first (undecryptable entries have no plain path)", "error"
            )
            return None
        return self._child(entry.plain_name)

    def _conflict_entry(self) -> Entry | None:
        """The cipher pane's flagged entry under the cursor (a conflict copy, maybe), if it is active."""
        if self.vapp.reverse is not None or self.active_list() is not self.cipher:
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

    def _ask(self, screen: Screen[Any], then: Callable[[Any], None]) -> None:
        """Push a dialog; when it closes, the pane that was active gets the focus back first."""

        def answered(result: Any) -> None:
            self.focus_active()
            then(result)

        self.app.push_screen(screen, answered)

    # -- order and hidden names -----------------------------------------------------------------

    def _resort(self) -> None:
        self.plain.replace(sort_plain(self.plain.all_entries, self.sort_by, self.sort_reverse))
        self._update_titles()

    def action_cycle_sort(self) -> None:
        self.sort_by = SORT_FIELDS[(SORT_FIELDS.index(self.sort_by) + 1) % len(SORT_FIELDS)]
        self._resort()
        self.vapp.remember_prefs()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()
        self.vapp.remember_prefs()

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        self._apply_filter()
        self.vapp.remember_prefs()

    # -- the selection (several entries at once) --------------------------------------------

    def _show_selection(self) -> None:
        names = self.selection.names
        self.plain.set_chosen([e for e in self.plain.all_entries if e.plain_name in names])
        self._update_titles()

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

    def _selected_paths(self) -> list[str]:
        return [self._child(name) for name in sorted(self.selection.names)]

    def action_export(self) -> None:
        copy = self._conflict_entry()
        if copy is not None:
            self._export_copy(copy)
            return
        if self.selection.names and self.vapp.reverse is None:
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
        if self.vapp.reverse is not None:
            self._export_view(path)
            return

        def go(dest: str | None) -> None:
            if dest:
                self.vapp.run_command(f"export {_q('/' + path)} {_q(dest)}", transfer=f"Exporting /{path}")

        self._ask(PromptScreen("Export", f"Decrypt /{path} to (local path):", start_dir(), local="dir"), go)

    def _export_view(self, path: str) -> None:
        def go(dest: str | None) -> None:
            if dest:
                self.vapp.run_command(
                    f"export {_q('/' + path)} {_q(dest)}", transfer=f"Writing the encrypted /{path}"
                )

        prompt = f"Write the encrypted view of /{path} to (local path; :export / DEST for all):"
        self._ask(PromptScreen("Export encrypted", prompt, start_dir(), local="dir"), go)

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

    def action_delete(self) -> None:
        copy = self._conflict_entry()
        if copy is not None:
            self._delete_copy(copy)
            return
        if self.selection.names and self.vapp.reverse is None:
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

    def action_mount(self) -> None:
        def go(mountpoint: str | None) -> None:
            if mountpoint:
                self._mount_at(mountpoint)

        default = str(Path.home() / "mnt" / self.vapp.cipherdir.resolve().name)
        if self.vapp.reverse is not None:
            prompt = "Mount the encrypted view (read-only) at (empty dir):"
            self._ask(PromptScreen("Mount encrypted view", prompt, default + "-encrypted", local="dir"), go)
            return
        self._ask(PromptScreen("Mount", "Mount the vault at (empty dir):", default, local="dir"), go)

    def _mount_at(self, mountpoint: str) -> None:
        """Mount at `mountpoint`; a missing one (the suggested ~/mnt/NAME) is offered to be made."""
        where = Path(mountpoint).expanduser()
        if where.exists() or where.is_symlink():
            self.vapp.run_command(f"mount {_q(mountpoint)}")
            return

        def create(yes: bool | None) -> None:
            if not yes:
                return
            try:
                where.mkdir(mode=0o700, parents=True)
            except OSError as e:
                self.vapp.log_line(f"{where}: cannot create the mountpoint: {e.strerror or e}", "error")
                return
            self.vapp.log_line(f"created {where}", "")
            self.vapp.run_command(f"mount {_q(str(where))}")

        question = f"{where} does not exist. Create it (mode 0700) and mount there?"
        self._ask(ConfirmScreen("Mount", question, yes="Create", no="Cancel"), create)

    def action_unmount(self) -> None:
        self.vapp.run_command("unmount")

    def action_passwd(self) -> None:
        if self.vapp.unlocked_with_master_key:
            from vaultsh.tui.recover_wizard import passwd_with_master_key

            passwd_with_master_key(self.vapp)
            return
        self.vapp.run_command("passwd")

    def action_fsck(self) -> None:
        from vaultsh.tui.fsck_screen import start_fsck

        start_fsck(self.vapp, self.cwd)

    def action_vault_info(self) -> None:
        self.vapp.run_command("info")

    def action_masterkey(self) -> None:
        session = self.vapp.session
        conf = session.vault.conf if session else None
        if conf is None:
            self.vapp.log_line(
                "no config to check a password against (unlocked with the master key)", "error"
            )
            return

        def show(key: str | None) -> None:
            if key:
                self.vapp.show_master_key(key)

        self._ask(
            PasswordScreen[str](
                "Show the master key",
                "Password",
                verify=lambda pw: commands.reveal_master_key(conf, pw),
                detail="Enter the password again to see the master key.",
            ),
            show,
        )

    def action_cycle_theme(self) -> None:
        self.vapp.cycle_theme()

    def help_keys(self) -> list[tuple[str, str]]:
        """The help's key list for this mode: a reverse-mode folder has no write keys."""
        # Help and Quit lead the footer; in the help they close the list.
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        last = [b for b in bindings if b.action in ("help", "quit_app")]
        bindings = [b for b in bindings if b not in last] + last
        if self.vapp.reverse is None:
            return describe_bindings(bindings) + self.LIST_KEYS
        bindings = [b for b in bindings if b.action not in WRITE_ACTIONS]
        return describe_bindings(bindings, REVERSE_TOOLTIPS) + self.LIST_KEYS

    def action_help(self) -> None:
        intro = HELP_INTRO_REVERSE if self.vapp.reverse is not None else HELP_INTRO
        self.app.push_screen(HelpScreen(self.help_keys(), intro))

    def action_quit_app(self) -> None:
        self.vapp.request_quit()


def shorten_path(path: str, width: int) -> str:
    """A local path (home as ~) cut in the middle to `width` cells, keeping its last part."""
    home = str(Path.home())
    if path.startswith(home + "/"):
        path = "~" + path[len(home) :]
    return cut_middle(path, width)


def _q(text: str) -> str:
    return shlex.quote(text)


def _pane_title(pane: Widget, name: str, where: str) -> Text:
    """A pane's title with its directory, cut in the middle so the deepest name stays in view
    (Textual cuts a long title at its end)."""
    # The two panes share the width; during a relayout a pane can report a zero size.
    width = pane.size.width or pane.screen.size.width // 2
    room = width - len(name) - 8  # corners, the title's padding, the gap after the name
    where = safe_text(where)
    # As Text: a directory named like Rich markup ("[link=…]") stays a name.
    return as_text(f"{name}  {cut_middle(where, room) if width else where}")


def _described(describe: Callable[[], RenderableType]) -> RenderableType:
    """The info panel's body, or the error that kept it from being made (the entry changed
    on disk since the listing, say): shown in the panel, never a traceback."""
    try:
        return describe()
    except (VaultError, OSError) as e:
        return Text(safe_text(str(e)), style="bold red")


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


def start_dir() -> str:
    """Where a local path prompt starts: the working directory, or home if that is gone."""
    try:
        return str(Path.cwd()) + "/"
    except OSError:
        return str(Path.home()) + "/"


# -- the app -------------------------------------------------------------------------------------


class VaultApp(SafeApp[int]):
    """Opens one vault: unlock (dialog or given secret), then the two-pane main screen."""

    CSS_PATH = "app.tcss"
    TITLE = "vaultsh"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        cipherdir: Path,
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        theme: str | None = None,
        logn: int | None = None,
        greeting: str | None = None,
    ) -> None:
        super().__init__()
        self.greeting = greeting  # the log's first line once the vault is open (the demo's password)
        self.cipherdir = cipherdir
        self.cipherdir_label = safe_text(str(cipherdir))
        self._password = password
        self._master_key = master_key
        self._wanted_theme = theme
        self._wizard_logn = logn
        self.vault: Vault | None = None  # the unlocked vault (forward mode)
        self.reverse: ReverseView | None = None  # the encrypted view (a reverse-mode folder)
        self.session: commands.Session | None = None
        self.io = TuiIO(self)
        self._output_title = ""  # the title of the panel a `:` command's output opens in
        self.busy = False  # a command is running in the worker
        self.log_lines: list[str] = []
        self.mount_info: Any = None  # mounts.MountInfo of this vault's mount, if any
        self._mount_query_running = False
        self.exit_notice: str | None = None  # printed once the screen is gone (run_tui)
        self.theme_names: list[str] = []
        self.prefs, self._prefs_warning = load_prefs()
        self.unlocked_with_master_key = False  # then passwd needs no old password
        self.main = MainScreen()
        self.main.sort_by, self.main.sort_reverse = self.prefs.sort, self.prefs.sort_reverse
        self.main.show_hidden = self.prefs.show_hidden

    # -- themes ---------------------------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        try:
            from vaultsh.tui.themes import theme_variable_defaults
        except ImportError:
            return {}
        return theme_variable_defaults()

    def _setup_themes(self) -> None:
        try:
            from vaultsh.tui.themes import DEFAULT_THEME, load_themes
        except ImportError:
            self.theme_names = ["textual-dark", "textual-light"]
            return
        for theme in load_themes().values():
            self.register_theme(theme)
            self.theme_names.append(theme.name)
        wanted = self._wanted_theme or self.prefs.theme or DEFAULT_THEME
        if self.get_theme(wanted) is None:
            self.notify(f"unknown theme {wanted!r}; using {DEFAULT_THEME}", severity="warning", markup=False)
            wanted = DEFAULT_THEME
        self.theme = wanted

    def set_theme(self, name: str | None) -> None:
        """The `theme` command: switch to NAME, or list the themes."""
        if name is None:
            for n in self.theme_names:
                self.log_line(("* " if n == self.theme else "  ") + n, "")
            return
        if self.get_theme(name) is None:
            self.log_line(f"{name}: unknown theme (theme lists them)", "error")
            return
        self.theme = name
        self.log_line(f"theme {name}", "")
        self.remember_prefs()

    def remember_prefs(self) -> None:
        """Save the theme, sort order and hidden-name setting for the next start."""
        main = self.main
        self.prefs = Prefs(self.theme, main.sort_by, main.sort_reverse, main.show_hidden)
        error = save_prefs(self.prefs)
        if error:
            self.log_line(error, "error")

    def cycle_theme(self) -> None:
        names = self.theme_names or [self.theme]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.remember_prefs()
        self.notify(f"theme {self.theme}", timeout=2, markup=False)

    # -- start-up and unlocking -------------------------------------------------------------

    def on_mount(self) -> None:
        self._setup_themes()
        self.push_screen(self.main)
        if self._prefs_warning:
            self.log_line(self._prefs_warning, "error")

    def start(self) -> None:
        """Called by the main screen once it is mounted: create, unlock or open the vault."""
        self.update_status()
        try:
            self._start()
        except OSError as e:  # an unreadable directory: one line, not a traceback
            self.quit_with(int(ExitCode.CIPHER_DIR), f"vaultsh: {self.cipherdir}: {e.strerror or e}")

    def _start(self) -> None:
        root = self.cipherdir
        if not (root / CONF_NAME).exists() and (root / REVERSE_CONF_NAME).exists():
            # A reverse-mode folder (§9.1): plain files beside the config of their encrypted view.
            if self._master_key is not None or self._password is not None:
                self._unlock_given_reverse()
            else:
                self._ask_password_reverse()
            return
        no_vault = not (root / CONF_NAME).exists() and self._master_key is None
        if no_vault and (not root.exists() or (root.is_dir() and not any(root.iterdir()))):
            self._new_vault()
            return
        if no_vault and self._password is None and self._recoverable(root):
            self.start_recovery()  # cipher files without their config
            return
        if self._master_key is not None or self._password is not None:
            self._unlock_given()
            return
        self._ask_password()

    def _new_vault(self) -> None:
        try:
            from vaultsh.tui.wizard import CANCELLED_EXIT, NewVaultScreen, cancelled_notice
        except ImportError:
            self.quit_with(int(ExitCode.CIPHER_DIR), f"vaultsh: {self.cipherdir}: no vault here")
            return

        def created(path: Path | None) -> None:
            if path is None:
                self.quit_with(CANCELLED_EXIT, cancelled_notice(self.cipherdir))
                return
            self.cipherdir = path
            self.cipherdir_label = safe_text(str(path))
            if not (path / CONF_NAME).exists() and (path / REVERSE_CONF_NAME).exists():
                self._ask_password_reverse()  # the wizard made a reverse-mode folder
            else:
                self._ask_password()

        if self._wizard_logn is not None:
            self.push_screen(NewVaultScreen(self.cipherdir, logn=self._wizard_logn), created)
        else:
            self.push_screen(NewVaultScreen(self.cipherdir), created)

    @staticmethod
    def _recoverable(root: Path) -> bool:
        """Cipher files without a config: the recovery wizard can rebuild it."""
        from vaultsh.vault.detect import looks_like_cipherdir

        conf = root / CONF_NAME
        return not conf.exists() and not conf.is_symlink() and root.is_dir() and looks_like_cipherdir(root)

    def _ask_password(self, conf_path: Path | None = None) -> None:
        try:
            conf = load_config(conf_path or self.cipherdir / CONF_NAME)
        except VaultError as e:
            if conf_path is None and self._offer_backup(e):
                return
            self.quit_with(int(e.exit_code), f"vaultsh: {e}")
            return

        def unlocked(vault: Vault | None) -> None:
            if vault is None:
                self.quit_with(int(ExitCode.PASSWORD_INCORRECT))
                return
            self.opened(vault)

        screen = PasswordScreen[Vault](
            "Unlock vault",
            "Password",
            verify=lambda pw: Vault(self.cipherdir, conf.decrypt_master_key(pw), conf.options, conf),
            detail=str(self.cipherdir),
        )
        self.push_screen(screen, unlocked)

    def start_recovery(self) -> None:
        """The recovery wizard: at start for cipher files without a config, or by `:recover`."""
        from vaultsh.tui.recover_wizard import RecoverScreen, recovered_line

        if self.reverse is not None:
            self.log_line("recover: for a reverse-mode folder use `vaultsh recover --reverse`", "error")
            return
        in_session = self.session is not None
        logn = self._wizard_logn
        screen = RecoverScreen(self.cipherdir) if logn is None else RecoverScreen(self.cipherdir, logn=logn)

        def done(key: bytes | None) -> None:
            if key is None:
                if not in_session:
                    self.quit_with(int(ExitCode.SIGINT))
                return
            self.log_line(recovered_line(screen), "")
            if self.session is not None:
                self.session.vault.conf = load_config(self.cipherdir / CONF_NAME)
            else:
                self._master_key = key
                self._unlock_given()

        self.push_screen(screen, done)

    def _offer_backup(self, error: VaultError) -> bool:
        """A broken config with a .bak beside it: offer to unlock with the .bak; False if none."""
        conf_path = self.cipherdir / CONF_NAME
        bak = conf_path.with_name(CONF_NAME + ".bak")
        if not os.path.lexists(conf_path) or not bak.is_file():
            return False

        def answered(yes: bool | None) -> None:
            if yes:
                self._ask_password(bak)
            else:
                self.quit_with(int(error.exit_code), f"vaultsh: {error}")

        question = f"{error} — unlock with the previous config, {bak.name}?"
        self.push_screen(ConfirmScreen("Broken config", question, yes=f"Use {bak.name}", no="Quit"), answered)
        return True

    def _ask_password_reverse(self) -> None:
        try:
            load_config(self.cipherdir / REVERSE_CONF_NAME)  # a broken config ends here, not in the dialog
        except VaultError as e:
            self.quit_with(int(e.exit_code), f"vaultsh: {e}")
            return

        def unlocked(session: commands.Session | None) -> None:
            if session is None:
                self.quit_with(int(ExitCode.PASSWORD_INCORRECT))
                return
            self.opened_session(session)

        screen = PasswordScreen[commands.Session](
            "Unlock reverse-mode folder",
            "Password",
            verify=lambda pw: commands.Session.open_reverse(self.cipherdir, self.io, password=pw),
            detail=f"{self.cipherdir} (encrypted view)",
        )
        self.push_screen(screen, unlocked)

    def _unlock_given_reverse(self) -> None:
        password, master_key = self._password, self._master_key
        self._unlock_given_with(
            lambda: commands.Session.open_reverse(
                self.cipherdir, self.io, password=password, master_key=master_key
            ),
            self.opened_session,
        )

    def _unlock_given(self) -> None:
        password, master_key = self._password, self._master_key
        self.unlocked_with_master_key = master_key is not None
        if master_key is not None:
            self._unlock_given_with(
                lambda: Vault.open(self.cipherdir, master_key=master_key), self._opened_by_master_key
            )
        else:
            self._unlock_given_with(lambda: Vault.open(self.cipherdir, password=password), self.opened)

    @work(thread=True, exclusive=True, group="unlock")
    def _unlock_given_with(self, unlock: Callable[[], _Opened], done: Callable[[_Opened], None]) -> None:
        """Unlock with the secrets given on the command line (scrypt: off the UI thread)."""
        try:
            result = unlock()
        except VaultError as e:
            self.call_from_thread(self.quit_with, int(e.exit_code), f"vaultsh: {e}")
            return
        except OSError as e:
            message = f"vaultsh: {self.cipherdir}: {e.strerror or e}"
            self.call_from_thread(self.quit_with, int(ExitCode.CIPHER_DIR), message)
            return
        finally:
            self._password = self._master_key = None
        self.call_from_thread(done, result)

    def opened(self, vault: Vault) -> None:
        """The vault is unlocked: make the session and show the root."""
        self.vault = vault
        self.opened_session(commands.Session(vault, self.cipherdir, self.io))

    def _opened_by_master_key(self, vault: Vault) -> None:
        """As `opened`; `passwd` (p) then sets a new password without asking the old one."""
        self.opened(vault)
        if self.session is not None:
            self.session.by_master_key = True

    def opened_session(self, session: commands.Session) -> None:
        """A session is open (a vault, or a reverse-mode folder's view): show its root."""
        # Commands run in a worker thread; their hooks touch the screen, so they cross over.
        session.hooks.update(
            {
                "theme": lambda name: self.on_ui_thread(self.set_theme, name),
                "exit": lambda: self.on_ui_thread(self.request_quit),
                "masterkey": self.show_master_key,
            }
        )
        self.session = session
        self.reverse = session.reverse
        if self.greeting:
            self.log_line(self.greeting, "")
        if self.reverse is not None:
            self.main.cipher.name_heading = "Name in the encrypted view"
        self.update_status()
        self.main.refresh_bindings()  # the footer's keys depend on the mode
        self.call_after_refresh(self.main.focus_active)
        self.main.load_dir("")
        self.set_interval(STATUS_INTERVAL, self._poll_mount)
        self._poll_mount()

    def on_ui_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn` on the UI thread: at once from there, else through call_from_thread (waits)."""
        if threading.get_ident() == self._thread_id:
            fn(*args)
        else:
            self.call_from_thread(fn, *args)

    def show_master_key(self, key: str) -> None:
        """Show the master key in a dialog, never in the log (also the `masterkey` command's hook)."""
        screen = SecretScreen("Master key", key, KEY_ADVICE)
        if threading.get_ident() == self._thread_id:
            self.push_screen(screen)
        else:
            self.call_from_thread(self.push_screen, screen)

    def sync_session_cwd(self, path: str) -> None:
        if self.session is not None:
            self.session.cwd = path

    # -- the log, the status bar -----------------------------------------------------------------

    def log_line(self, text: str, kind: str) -> None:
        """Add a line to the log area; `kind` is "", "command" or "error" (also a notification)."""
        text = safe_text(text)  # the one way into the log: names in it are untrusted
        self.log_lines.append(text)
        del self.log_lines[:-LOG_KEEP]
        style = "bold red" if kind == "error" else ("bold" if kind == "command" else "")
        with contextlib.suppress(NoMatches):
            self.main.query_one("#log", RichLog).write(Text(text, style=style))
        if kind == "error":
            self.notify(text, severity="error", timeout=4, markup=False)

    def update_status(self) -> None:
        """The status bar, fitted to its width: the mount's counters go first, then path lengths,
        then the format flags (the info command shows them all)."""
        try:
            status = self.main.query_one("#status", Static)
        except NoMatches:  # a late worker result after the screen closed
            return
        width = status.content_region.width or self.size.width
        short = STATUS_PATH_CELLS // 2
        fallbacks: list[tuple[int, int | None, bool, bool]] = [
            # (vault path cells, mountpoint cells, mount counters, format flags): the live
            # counters outlast the format flags, which `info` shows anyway.
            (STATUS_PATH_CELLS, None, True, True),
            (STATUS_PATH_CELLS, None, True, False),
            (short, short, True, False),
            (STATUS_PATH_CELLS, STATUS_PATH_CELLS, False, True),
            (short, short, False, True),
            (short, short, False, False),
        ]
        for vault_cells, mount_cells, counters, flags in fallbacks:
            line = self._status_line(vault_cells, mount_cells, counters=counters, flags=flags)
            if line.cell_len <= width:
                break
        status.update(line)

    def _status_line(self, vault_cells: int, mount_cells: int | None, *, counters: bool, flags: bool) -> Text:
        parts: list[Text | str] = [Text(shorten_path(self.cipherdir_label, vault_cells), style="bold")]
        # In a reverse-mode folder the session's vault carries the format flags and the config.
        vault = self.vault or (self.session.vault if self.session else None)
        conf: ConfFile | None = vault.conf if vault else None
        if self.reverse is not None:
            parts.append(Text("reverse (read-only view)", style="bold"))
        if vault is not None:
            o = vault.options
            names = (
                "plaintext names"
                if o.plaintext_names
                else ("deterministic names" if o.deterministic_names else "EME names")
            )
            shown = [o.content_encryption, names]
            if not o.plaintext_names:
                shown.append("raw64" if o.raw64 else "base64")
            if conf is not None:
                shown.append(f"scrypt 2^{conf.scrypt.logn}")
            if flags:
                parts.append(" · ".join(shown))
            parts.append(
                Text("unlocked", style="bold green" if self.theme and "light" not in self.theme else "bold")
            )
        else:
            parts.append("locked")
        info = self.mount_info
        if info is None:
            parts.append("not mounted")
        elif not info.alive:
            parts.append(Text("mount stale: worker gone — press u to clear", style="bold red"))
        else:
            mountpoint = safe_text(info.mountpoint)
            where = mountpoint if mount_cells is None else shorten_path(mountpoint, mount_cells)
            mount = f"mounted {info.mode} {'ro' if info.read_only else 'rw'} at {where}"
            stats = info.stats
            if stats and counters:
                mount += (  # compact: they fit beside the paths on a 120-column terminal
                    f" · {int(stats.get('open_files', 0))} open"
                    f" · read {commands.human_bytes(float(stats.get('bytes_read', 0)))}"
                    f" · wrote {commands.human_bytes(float(stats.get('bytes_written', 0)))}"
                    f" · {int(stats.get('errors', 0))} err"
                )
            parts.append(Text(mount, style="bold"))
        if self.busy:
            parts.append(Text("working…", style="italic"))
        return Text(" │ ").join(Text(p) if isinstance(p, str) else p for p in parts)

    def _poll_mount(self) -> None:
        # One query at a time: a worker that does not answer holds one for STATUS_TIMEOUT.
        if not self._mount_query_running:
            self._mount_query_running = True
            self._query_mount()

    @work(thread=True, exclusive=True, group="mount-status")
    def _query_mount(self) -> None:
        # Off the UI thread, and never a stat of the mountpoint: the registry, /proc and the
        # worker's socket tell everything (a dead FUSE mount answers ENOTCONN or hangs).
        info = None
        try:
            from vaultsh.service import mounts

            info = mounts.find_mount(self.cipherdir)
        except (ImportError, VaultError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                self.call_from_thread(self._set_mount, info)

    def _set_mount(self, info: Any) -> None:
        self._mount_query_running = False
        before = self.mount_info
        self.mount_info = info
        if info is not None and not info.alive and (before is None or before.alive):
            self.log_line(
                f"the mount at {info.mountpoint} is stale: its worker is gone "
                "(killed or crashed); press u to clear it",
                "error",
            )
        was = None if before is None else before.alive
        now = None if info is None else info.alive
        if was != now:
            self.main.refresh_bindings()  # Unmount and Mount come and go with the mount
        self.update_status()

    # -- commands -------------------------------------------------------------------------------

    def run_command(
        self, line: str, *, transfer: str | None = None, select: str | None = None, show_output: bool = False
    ) -> None:
        """Run one command line of the registry in a worker; refresh the panes afterwards.

        With `show_output` (a line typed at `:`), output of more than one line (`ls -l`,
        `help`, `cat`) also opens in a full-width scrollable panel, not only in the narrow log.
        """
        shown = "passwd" if line.split()[:1] == ["passwd"] else line
        if not self.busy:
            self.io.output = [] if show_output else None
            self._output_title = f"output of :{shown}"
        self.run_task(
            shown, lambda session: commands.run_line(session, line), transfer=transfer, select=select
        )

    def run_task(self, shown: str, task: Task, *, transfer: str | None = None, select: Select = None) -> None:
        """Run `task` (a command line, or an action on the selection) in a worker, logged as
        `shown`; with `transfer`, a progress bar so labelled; refresh the panes afterwards."""
        if self.session is None:
            return
        if self.busy:
            self.log_line("a command is still running (Esc cancels it)", "error")
            return
        self.busy = True
        self.io.cancel.clear()
        self.log_line(f"> {shown}", "command")
        if transfer is not None:
            self.main.query_one("#transfer", TransferBar).start(transfer, None)
        self.update_status()
        self._run_task(task, select)

    @work(thread=True, group="command")
    def _run_task(self, task: Task, select: Select) -> None:
        assert self.session is not None
        code = run_guarded(self.session, task)
        self.call_from_thread(self._command_done, code, select)

    def _command_done(self, code: int, select: Select) -> None:
        self.busy = False
        output, self.io.output = self.io.output, None
        if output is not None and len(output) > 1:
            data = ("\n".join(output) + "\n").encode("utf-8", "surrogateescape")
            self.push_screen(ViewerScreen(self._output_title, len(data), data_reader(data)))
        self.main.query_one("#transfer", TransferBar).finish()
        if not self.main.query_one("#cmdline", Input).display:
            self.main.focus_active()  # dialogs the command opened may have taken the focus
        if self.session is not None and self.session.finished:
            return
        # `cd` moves the session; every other command may have changed the tree.
        cwd = self.session.cwd if self.session else self.main.cwd
        current = self.main.plain.current
        if callable(select):
            select = select()
        keep = select if select is not None else (current.plain_name if current else None)
        self.main.load_dir(cwd, select=keep)
        self._poll_mount()
        self.update_status()

    def on_transfer_progress(self, message: TransferProgress) -> None:
        bar = self.main.query_one("#transfer", TransferBar)
        bar.query_one("ProgressBar").update(total=message.total or None, progress=message.done)  # type: ignore[attr-defined]

    # -- quitting ---------------------------------------------------------------------------------

    def on_key(self, event: Any) -> None:
        # Runs before App's own key handler, which looks up the bindings.
        if self.screen is self.main and self.main.intercept_key(event):
            event.stop()
            event.prevent_default()

    async def action_quit(self) -> None:
        """Ctrl-Q (Textual's quit key) asks about a mount too, as q does."""
        self.request_quit()

    def request_quit(self) -> None:
        """Quit; if this vault is mounted, ask first: unmount and quit, leave it mounted, cancel."""
        if any(isinstance(s, ChoiceScreen) and s.id == "quit-dialog" for s in self.screen_stack):
            return  # already asking
        info = self.mount_info
        if info is None or self.session is None:
            self._quit(0)
            return
        where = info.mountpoint
        if info.alive:
            question = f"The vault is mounted at {where}. Unmount it before quitting?"
            choices = [("unmount", "u", "Unmount and quit"), ("leave", "l", "Quit, leave mounted")]
        else:
            question = (
                f"The mount at {where} is stale: its worker is gone, so it serves nothing. "
                "Clear it before quitting?"
            )
            choices = [("unmount", "u", "Clear and quit"), ("leave", "l", "Quit, leave it")]
        choices.append(("cancel", "c", "Cancel"))

        def answer(choice: str | None) -> None:
            if choice == "unmount":
                self._unmount_and_quit(Path(where))
            elif choice == "leave":
                self.exit_notice = leave_mounted_notice(self.cipherdir_label, where, info.alive)
                self._quit(0)
            else:
                if self.session is not None:
                    self.session.finished = False  # an `exit` command asked; it is called off
                self.main.focus_active()

        dialog = ChoiceScreen("Quit", question, choices, default="unmount")
        dialog.id = "quit-dialog"
        self.push_screen(dialog, answer)

    def _quit(self, code: int) -> None:
        self.io.cancel.set()  # a running transfer stops instead of holding the exit
        self.exit(code)

    def _unmount_and_quit(self, mountpoint: Path) -> None:
        self.busy = True
        self.log_line(f"unmounting {mountpoint}…", "")
        self.update_status()
        self._unmount_then_quit(mountpoint)

    @work(thread=True, group="command")
    def _unmount_then_quit(self, mountpoint: Path) -> None:
        from vaultsh.service import mounts

        try:
            mounts.unmount(mountpoint)
        except (VaultError, OSError) as e:
            self.call_from_thread(self._unmount_failed, e)
            return
        self.call_from_thread(self._quit, 0)

    def _unmount_failed(self, error: Exception) -> None:
        """The mount stays (busy, say): say so and keep running; q asks again."""
        self.busy = False
        text = str(error) if isinstance(error, VaultError) else f"unmount failed: {error}"
        self.log_line(f"{text}; not quitting (close what uses the mount, then q again)", "error")
        self._poll_mount()
        self.update_status()

    def quit_with(self, code: int, message: str | None = None) -> None:
        # As Text: a path with [brackets] is not Rich markup.
        self.exit(code, return_code=code, message=Text(safe_text(message)) if message else None)

    def report_internal_error(self, line: str) -> None:
        self.log_line(line, "error")


def leave_mounted_notice(vault: str, mountpoint: str, alive: bool) -> str:
    """The line printed on quitting while a mount stays: where it is and how to unmount it."""
    command = f"vaultsh unmount {shlex.quote(mountpoint)}"
    if alive:
        return f"vaultsh: {vault} stays mounted at {mountpoint}; unmount it with `{command}`"
    return f"vaultsh: the stale mount at {mountpoint} stays; clear it with `{command}`"


def read_given_secret(secrets: SecretSource) -> tuple[bytes | None, bytes | None]:
    """(password, master key) given on the command line, read before the screen takes over."""
    secrets.validate()
    if secrets.has_masterkey:
        return None, secrets.read_master_key()
    # A source with its own read_password (the demo's known password) answers without a prompt.
    supplies_password = type(secrets).read_password is not SecretSource.read_password
    if secrets.passfiles or secrets.extpass or supplies_password:
        return secrets.read_password(), None
    return None, None


def demo_greeting(path: Path, password: str) -> str:
    """The demo's first log line: its password is needed by K and p, and guards nothing."""
    return f"Demo vault {path}: its password is {password} (K and p ask for it)"


def run_tui(
    cipherdir: Path, secrets: SecretSource, theme: str | None = None, greeting: str | None = None
) -> int:
    """Open the vault in CIPHERDIR full-screen; returns the exit code (12: password dialog left)."""
    try:
        password, master_key = read_given_secret(secrets)
    except VaultError as e:
        print(f"vaultsh: {safe_text(str(e))}", file=sys.stderr)
        return int(e.exit_code)
    if cipherdir.exists() and not cipherdir.is_dir():
        print(f"vaultsh: {safe_text(str(cipherdir))}: not a directory", file=sys.stderr)
        return int(ExitCode.CIPHER_DIR)
    app = VaultApp(cipherdir, password=password, master_key=master_key, theme=theme, greeting=greeting)
    result = app.run()
    if app.exit_notice:
        print(safe_text(app.exit_notice))
    return int(result) if result is not None else int(app.return_code or 0)


__all__ = ["MainScreen", "TuiIO", "VaultApp", "run_tui"]
