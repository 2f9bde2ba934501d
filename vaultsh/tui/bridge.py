"""The command layer's SessionIO for commands run in a TUI worker thread: output, dialogs, progress."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from vaultsh.service.transfer import Cancelled
from vaultsh.tui.messages import TransferProgress
from vaultsh.tui.screens import (
    ChoiceScreen,
    ConfirmScreen,
    PasswordScreen,
)
from vaultsh.vault.display import safe_text

if TYPE_CHECKING:
    from vaultsh.tui.app import VaultApp


PROGRESS_INTERVAL = 0.1  # at most this often a progress update crosses to the UI thread


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
