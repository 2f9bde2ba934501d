"""The vaultsh TUI: the app that opens one vault, runs its commands and quits safely."""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import Input, RichLog

from vaultsh.service import commands
from vaultsh.service.passwords import SecretSource
from vaultsh.tui import palette
from vaultsh.tui.bridge import TuiIO
from vaultsh.tui.browser import LOG_KEEP
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.messages import TransferProgress
from vaultsh.tui.prefs import Prefs, load_prefs, save_prefs
from vaultsh.tui.safety import SafeApp
from vaultsh.tui.screens import (
    ChoiceScreen,
    SecretScreen,
    TransferBar,
)
from vaultsh.tui.selection import Task, run_guarded
from vaultsh.tui.themes import DEFAULT_THEME, load_themes, theme_variable_defaults
from vaultsh.tui.unlock import Unlocker
from vaultsh.tui.viewer import ViewerScreen, data_reader
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import ExitCode, VaultError

# Which plain name the cursor goes to after a command: a name, one the command makes known, or None.
Select = str | Callable[[], str | None] | None
STATUS_INTERVAL = 1.0  # seconds between mount status refreshes

KEY_ADVICE = (
    "With this key the vault opens even if the password or gocryptfs.conf is lost. "
    "Write it on paper and keep it away from the vault."
)


# -- the app -------------------------------------------------------------------------------------


class VaultApp(SafeApp[int]):
    """Opens one vault: unlock (dialog or given secret), then the two-pane main screen."""

    CSS_PATH = "app.tcss"
    TITLE = "vaultsh"
    ENABLE_COMMAND_PALETTE = False
    # Ctrl-C as in a terminal program: it stops what runs, else it asks to quit. Priority: an
    # input's own Ctrl-C (copy) would otherwise take it.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "interrupt", "Cancel / quit", show=False, priority=True, system=True)
    ]

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
        self._wanted_theme = theme
        self.io = TuiIO(self)
        self._output_title = ""  # the title of the panel a `:` command's output opens in
        self.log_lines: list[str] = []
        self._mount_query_running = False
        self.exit_notice: str | None = None  # printed once the screen is gone (run_tui)
        self.theme_names: list[str] = []
        self.prefs, self._prefs_warning = load_prefs()
        self.main = MainScreen()
        self.unlocker = Unlocker(self, password=password, master_key=master_key, logn=logn)
        # Before the screen exists: set without the watchers, which apply them to its panes.
        self.main.set_reactive(MainScreen.sort_by, self.prefs.sort)
        self.main.set_reactive(MainScreen.sort_reverse, self.prefs.sort_reverse)
        self.main.set_reactive(MainScreen.show_hidden, self.prefs.show_hidden)

    # -- themes ---------------------------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variable_defaults()

    def _setup_themes(self) -> None:
        for theme in load_themes().values():
            self.register_theme(theme)
            self.theme_names.append(theme.name)
        wanted = self._wanted_theme or self.prefs.theme or DEFAULT_THEME
        if self.get_theme(wanted) is None:
            self.notify(f"unknown theme {wanted!r}; using {DEFAULT_THEME}", severity="warning", markup=False)
            wanted = DEFAULT_THEME
        self.theme = wanted

    def watch_theme(self, theme: str) -> None:
        """Text drawn outside the CSS takes the new theme's colours (from here on; the status
        bar at once)."""
        palette.use_theme(self.get_css_variables())
        self.main.update_status()

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
        palette.use_theme(self.get_css_variables())
        self.push_screen(self.main)
        if self._prefs_warning:
            self.log_line(self._prefs_warning, "error")

    def start(self) -> None:
        """Called by the main screen once it is mounted: create, unlock or open the vault."""
        self.main.update_status()
        self.unlocker.start()

    def start_recovery(self) -> None:
        """The recovery wizard: at start for cipher files without a config, or by `:recover`."""
        self.unlocker.start_recovery()

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
        if self.greeting:
            self.log_line(self.greeting, "")
        self.main.session = session  # its watcher shows the mode: status bar, footer, headings
        self.call_after_refresh(self.main.focus_active)
        self.main.load_dir("")
        self.set_interval(STATUS_INTERVAL, self._poll_mount)
        self._poll_mount()

    @property
    def session(self) -> commands.Session | None:
        """The open vault or reverse-mode folder; the main screen holds it (see BrowserScreen)."""
        return self.main.session

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

    # -- the log, the status bar -----------------------------------------------------------------

    def log_line(self, text: str, kind: str) -> None:
        """Add a line to the log area; `kind` is "", "command" or "error" (also a notification)."""
        text = safe_text(text)  # the one way into the log: names in it are untrusted
        self.log_lines.append(text)
        del self.log_lines[:-LOG_KEEP]
        style = (
            palette.style("error", bold=True) if kind == "error" else ("bold" if kind == "command" else "")
        )
        with contextlib.suppress(NoMatches):
            self.main.query_one("#log", RichLog).write(Text(text, style=style))
        if kind == "error":
            self.notify(text, severity="error", timeout=4, markup=False)

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
        except (VaultError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                self.call_from_thread(self._set_mount, info)

    def _set_mount(self, info: Any) -> None:
        self._mount_query_running = False
        self.main.mount_info = info  # its watcher tells of a stale mount and redraws

    # -- commands -------------------------------------------------------------------------------

    def run_command(
        self, line: str, *, transfer: str | None = None, select: str | None = None, show_output: bool = False
    ) -> None:
        """Run one command line of the registry in a worker; refresh the panes afterwards.

        With `show_output` (a line typed at `:`), output of more than one line (`ls -l`,
        `help`, `cat`) also opens in a full-width scrollable panel, not only in the narrow log.
        """
        shown = "passwd" if line.split()[:1] == ["passwd"] else line
        if not self.main.busy:
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
        if self.main.busy:
            self.log_line("a command is still running (Esc cancels it)", "error")
            return
        self.main.busy = True
        self.io.cancel.clear()
        self.log_line(f"> {shown}", "command")
        if transfer is not None:
            self.main.query_one("#transfer", TransferBar).start(transfer, None)
        self._run_task(task, select)

    @work(thread=True, group="command")
    def _run_task(self, task: Task, select: Select) -> None:
        assert self.session is not None
        code = run_guarded(self.session, task)
        self.call_from_thread(self._command_done, code, select)

    def _command_done(self, code: int, select: Select) -> None:
        self.main.busy = False  # the status bar shows what the command changed
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

    def on_transfer_progress(self, message: TransferProgress) -> None:
        bar = self.main.query_one("#transfer", TransferBar)
        bar.query_one("ProgressBar").update(total=message.total or None, progress=message.done)  # type: ignore[attr-defined]

    # -- quitting ---------------------------------------------------------------------------------

    def on_key(self, event: Any) -> None:
        # Runs before App's own key handler, which looks up the bindings.
        if self.screen is self.main and self.main.intercept_key(event):
            event.stop()
            event.prevent_default()

    async def action_interrupt(self) -> None:
        """Ctrl-C: on the main screen, cancel what runs or ask to quit; in a dialog, a viewer or
        the fsck screen, what Esc does there (cancel, close; a running check stops)."""
        if self.screen is self.main:
            self.main.interrupt()
            return
        escape = self.screen.active_bindings.get("escape")
        if escape is not None:
            await self.run_action(escape.binding.action, escape.node)

    async def action_quit(self) -> None:
        """Ctrl-Q (Textual's quit key) asks about a mount too, as q does."""
        self.request_quit()

    def request_quit(self) -> None:
        """Quit; if this vault is mounted, ask first: unmount and quit, leave it mounted, cancel."""
        if any(isinstance(s, ChoiceScreen) and s.id == "quit-dialog" for s in self.screen_stack):
            return  # already asking
        info = self.main.mount_info
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
        self.main.busy = True
        self.log_line(f"unmounting {mountpoint}…", "")
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
        self.main.busy = False
        text = str(error) if isinstance(error, VaultError) else f"unmount failed: {error}"
        self.log_line(f"{text}; not quitting (close what uses the mount, then q again)", "error")
        self._poll_mount()

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
