"""A prompt_toolkit REPL over the command registry, completing decrypted names."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.completion.base import get_common_complete_suffix
from prompt_toolkit.document import Document
from prompt_toolkit.history import DummyHistory, FileHistory, History
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output

from vaultsh.service.commands import (
    Session,
    SessionIO,
    complete,
    current_word,
    human_bytes,
    keeps_history,
    run_line,
    show,
    split_line,
)
from vaultsh.service.transfer import Cancelled
from vaultsh.shell.redirect import find_redirect, run_redirected
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import ReadPasswordError, VaultError

SessionFactory = Callable[[SessionIO], Session]


def history_path() -> Path:
    """$XDG_DATA_HOME/vaultsh/history (XDG's default data home is ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vaultsh" / "history"


class SecretFreeHistory(FileHistory):
    """A history file that never records lines of commands dealing in secrets (passwd, ...).

    Passwords themselves are asked in separate prompts without history; this keeps even a
    password mistakenly typed as an argument of such a command off the disk.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created 0600 up front: FileHistory would create it with the umask's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        super().__init__(str(path))

    def append_string(self, string: str) -> None:
        if keeps_history(string):
            super().append_string(string)


class VaultCompleter(Completer):
    """Command names and decrypted vault paths (local paths for export/import targets)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        word = current_word(text)
        for candidate in complete(self.session, text):
            yield Completion(candidate, start_position=-len(word), display=_last_name(candidate))


def _last_name(candidate: str) -> str:
    """What the menu shows for a candidate: its last path component, unquoted unless a
    terminal would act on it (then in $'...' form; the inserted text stays exact)."""
    plain = split_line(candidate)[0] if candidate else candidate
    is_dir = plain.endswith("/")
    name = quote_name(plain.rstrip("/").rsplit("/", 1)[-1])
    return name + "/" if is_dir else name


class ShellIO:
    """The REPL's SessionIO: output to a stream, secrets and questions through prompt_toolkit."""

    def __init__(
        self, out: TextIO, err: TextIO, input: Input | None = None, output: Output | None = None
    ) -> None:
        self.out = out
        self.err = err
        self._input = input
        self._output = output
        self._cancel = False
        self._shown_percent = -1
        color = err.isatty() and not os.environ.get("NO_COLOR")
        self._red, self._reset = ("\033[31m", "\033[0m") if color else ("", "")

    def _ask(self, prompt: str, *, is_password: bool) -> str:
        # A session of its own with no history: answers never reach the history file.
        asker: PromptSession[str] = PromptSession(
            history=DummyHistory(), input=self._input, output=self._output
        )
        return asker.prompt(prompt, is_password=is_password)

    def write(self, text: str) -> None:
        self.out.write(safe_text(text) + "\n")
        self.out.flush()

    def error(self, text: str) -> None:
        self.err.write(f"{self._red}vaultsh: {safe_text(text)}{self._reset}\n")
        self.err.flush()

    def ask_secret(self, prompt: str) -> bytes:
        try:
            return self._ask(prompt, is_password=True).encode()
        except KeyboardInterrupt:
            raise Cancelled() from None
        except EOFError:
            raise ReadPasswordError("no password given") from None

    def confirm(self, question: str) -> bool:
        try:
            answer = self._ask(f"{question} [y/N] ", is_password=False)
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def choose(self, question: str, choices: list[tuple[str, str]]) -> str | None:
        """commands.Chooser: answered by a label's first letter; anything else cancels."""
        keys = {label[0].lower(): value for value, label in choices}
        menu = ", ".join(f"[{label[0].lower()}]{label[1:].lower()}" for _value, label in choices)
        try:
            answer = self._ask(f"{question} {menu}? ", is_password=False)
        except (KeyboardInterrupt, EOFError):
            return "cancel"
        return keys.get(answer.strip()[:1].lower(), "cancel")

    def progress(self, done: int, total: int) -> None:
        """A one-line percentage on a terminal, redrawn only when the number changes."""
        if not self.out.isatty() or total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent == self._shown_percent:
            return
        self._shown_percent = percent
        end = "\n" if percent >= 100 else ""
        self.out.write(f"\r{percent:3d}%  {human_bytes(done)} of {human_bytes(total)}\033[K{end}")
        self.out.flush()

    def cancelled(self) -> bool:
        return self._cancel

    @contextmanager
    def running(self) -> Iterator[None]:
        """While a command runs, Ctrl-C asks it to stop; a second Ctrl-C interrupts at once."""
        self._cancel = False
        self._shown_percent = -1
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            if self._cancel:
                raise KeyboardInterrupt
            self._cancel = True

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if self._shown_percent not in (-1, 100):
                self.out.write("\n")  # end an unfinished progress line
            self._cancel = False


def _tab_bindings() -> KeyBindings:
    """Tab completes at once, like a Unix shell: a single candidate is inserted, several
    share their common part, and only then a menu opens. Doing the first two synchronously
    means typed-ahead keys (a fast typist, a paste, a test) see the completed text.
    """
    bindings = KeyBindings()

    @bindings.add("tab")
    def _complete(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.complete_state is not None:
            buffer.complete_next()
            return
        completer = buffer.completer
        if completer is None:
            return
        found = list(completer.get_completions(buffer.document, CompleteEvent(completion_requested=True)))
        if len(found) == 1:
            buffer.apply_completion(found[0])
        elif found:
            common = get_common_complete_suffix(buffer.document, found)
            if common:
                buffer.insert_text(common)
            else:
                buffer.start_completion(select_first=False)

    return bindings


def prompt_text(session: Session) -> str:
    return f"vaultsh:{safe_text(show(session.cwd))}> "


def run_shell(
    session_factory: SessionFactory,
    *,
    history: History | None = None,
    input: Input | None = None,
    output: Output | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Read, run and repeat until `exit` or Ctrl-D; returns 0.

    Ctrl-C drops the line being typed, or stops the running command. Without a terminal on
    stdin (and no `input` given) the lines are read as a script instead (see run_script).
    """
    out, err = stdout or sys.stdout, stderr or sys.stderr
    if input is None and not sys.stdin.isatty():
        return run_script(session_factory, sys.stdin, stdout=out, stderr=err)
    io = ShellIO(out, err, input, output)
    session = session_factory(io)
    if history is None:
        history = SecretFreeHistory(history_path())
    prompt: PromptSession[str] = PromptSession(
        history=history,
        completer=VaultCompleter(session),
        complete_while_typing=False,  # each completion decrypts a directory: only on Tab
        key_bindings=_tab_bindings(),
        input=input,
        output=output,
    )
    io.write(f"vaultsh shell on {session.cipherdir}; `help` lists commands, Ctrl-D leaves.")
    while not session.finished:
        try:
            line = prompt.prompt(prompt_text(session))
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        with io.running():
            run_shell_line(session, line, out)
    leave_mount(session, ask=True)
    return 0


def run_shell_line(session: Session, line: str, out: TextIO) -> int:
    """A typed line: a vault command, or one whose output goes `|` to a local command or `>` to
    a local file."""
    redirect = find_redirect(line)
    if redirect is None:
        return run_line(session, line)
    return run_redirected(session, redirect, out)


def leave_mount(session: Session, *, ask: bool) -> None:
    """On leaving: a live mount of this vault outlives the shell; say so, or (`ask`) offer to
    unmount it first. A stale one (worker gone) is named with the command that clears it."""
    from vaultsh.service import mounts  # loaded only when leaving, as the commands do

    io = session.io
    try:
        info = mounts.find_mount(session.cipherdir)
    except (VaultError, OSError):
        return
    if info is None:
        return
    command = f"vaultsh unmount {shlex.quote(info.mountpoint)}"
    if not info.alive:
        io.write(f"the stale mount at {info.mountpoint} stays; clear it with `{command}`")
        return
    if ask and io.confirm(f"{session.cipherdir} is mounted at {info.mountpoint}. Unmount it?"):
        try:
            mounts.unmount(Path(info.mountpoint))
        except (VaultError, OSError) as e:
            io.error(f"{e}; it stays mounted (`{command}` once it is no longer in use)")
            return
        io.write(f"unmounted {info.mountpoint}")
        return
    io.write(f"{session.cipherdir} stays mounted at {info.mountpoint}; unmount it with `{command}`")


class _ScriptIO(ShellIO):
    """For commands read from a pipe: secrets come from the next input line."""

    def __init__(self, lines: Iterator[str], out: TextIO, err: TextIO) -> None:
        super().__init__(out, err)
        self._lines = lines

    def ask_secret(self, prompt: str) -> bytes:
        line = next(self._lines, "").rstrip("\n")
        if not line:
            raise ReadPasswordError(f"no password given ({prompt.strip().rstrip(':')})")
        return line.encode()

    def confirm(self, question: str) -> bool:
        return next(self._lines, "").strip().lower() in ("y", "yes")

    def choose(self, question: str, choices: list[tuple[str, str]]) -> str | None:
        return None  # a script is not asked: the command refuses, as the CLI does


def run_script(
    session_factory: SessionFactory, lines: Iterable[str], *, stdout: TextIO, stderr: TextIO
) -> int:
    """Run commands one per line (no prompt); returns the status of the last one, like sh."""
    it = iter(lines)
    io = _ScriptIO(it, stdout, stderr)
    session = session_factory(io)
    status = 0
    for line in it:
        status = run_shell_line(session, line.rstrip("\n"), stdout)
        if session.finished:
            break
    leave_mount(session, ask=False)
    return status
