"""Untrusted strings as plain text on screen, and the apps' last-resort error handler."""

from __future__ import annotations

import os
from typing import TypeVar

import rich
from rich.cells import cell_len
from rich.segment import Segments
from rich.text import Text
from textual.app import App
from textual.worker import WorkerFailed

from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import ExitCode

ReturnType = TypeVar("ReturnType")
ERROR_CELLS = 200  # an internal error's message is cut to this many cells


def as_text(text: str, style: str = "") -> Text:
    """`text` for a widget: terminal-safe (escapes, as `ls` shows them) and never Textual or
    Rich markup, so a name like "[link=a:b]" or "[@click=app.quit]" stays a name. A str given
    to Static, Label, Button, notify or a Table cell is read as markup; this Text is not."""
    return Text(safe_text(text), style=style, end="")


def cut_middle(text: str, width: int) -> str:
    """`text` cut in the middle to `width` cells, mostly keeping its end (the deepest name)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep_end = max(width // 2, width - 12)
    head = ""
    for ch in text:
        if cell_len(head + ch) > width - keep_end - 1:
            break
        head += ch
    tail = ""
    for ch in reversed(text):
        if cell_len(head) + 1 + cell_len(ch + tail) > width:
            break
        tail = ch + tail
    return head + "…" + tail


def internal_error_line(error: BaseException) -> str:
    """One line naming a bug: its type and message, never a traceback or local variables."""
    cause = error.error if isinstance(error, WorkerFailed) else error
    what = cut_middle(safe_text(str(cause)), ERROR_CELLS)
    return f"internal error ({type(cause).__name__}: {what}); VAULTSH_DEBUG=1 shows details"


class SafeApp(App[ReturnType]):
    """An App whose unhandled errors never put local variables on the screen.

    Textual's own handler draws a traceback with every frame's locals: a typed password, a
    master key, a decrypted preview. Here a bug is one line: a failed worker is reported
    (`report_internal_error`) and the app goes on, as its screen is intact; any other error
    ends the app with that line on stderr and exit code 11. VAULTSH_DEBUG=1 shows the
    traceback instead, still without locals.
    """

    def _handle_exception(self, error: Exception) -> None:
        if os.environ.get("VAULTSH_DEBUG"):
            super()._handle_exception(error)
            return
        if self._exception is None:  # run_test re-raises it, so a test still fails on a bug
            self._exception = error
            self._exception_event.set()
        line = internal_error_line(error)
        if isinstance(error, WorkerFailed):
            self.report_internal_error(line)
            return
        code = int(ExitCode.OTHER)
        self.exit(None, return_code=code, message=Text(f"vaultsh: {line}"))

    def _fatal_error(self) -> None:
        """Textual's traceback (VAULTSH_DEBUG), with the local variables left out."""
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(traceback, self.console.options)))
        self._close_messages_no_wait()

    def report_internal_error(self, line: str) -> None:
        """A failed worker's line, shown while the app goes on."""
        self.notify(line, severity="error", timeout=8, markup=False)


__all__ = ["SafeApp", "as_text", "cut_middle", "internal_error_line"]
