"""Modal dialogs of the TUI (password, prompt, confirm, help, secret display) and the progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static

from vaultsh.tui.completion import CompletingInput, candidates_hint
from vaultsh.tui.pathpick import PathBrowser, PathKind, ShownPaths, complete_local
from vaultsh.tui.safety import as_text
from vaultsh.vault.display import has_unsafe_chars, quote_name, safe_text
from vaultsh.vault.errors import VaultError

T = TypeVar("T")


class PasswordScreen(ModalScreen[T | None], Generic[T]):
    """Ask for a password; with `verify`, check it in a thread and stay open on a wrong one.

    `verify` gets the password bytes and returns what the dialog dismisses with (an unlocked
    vault, a master key); a VaultError it raises is shown in the dialog for another try. It
    runs in a thread worker because scrypt takes a noticeable time by design (§3.4). Esc
    dismisses with None. With `repeat`, the password is asked twice and must match.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        prompt: str = "Password",
        *,
        verify: Callable[[bytes], T] | None = None,
        repeat: bool = False,
        detail: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.verify = verify
        self.repeat = repeat
        self.detail = detail
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label(safe_text(self.title_text), classes="dialog-title", markup=False)
            if self.detail:  # a path: shown as text, never read as markup
                yield Label(safe_text(self.detail), classes="dialog-detail", markup=False)
            yield Label(safe_text(self.prompt), classes="dialog-label", markup=False)
            yield Input(password=True, id="password")
            if self.repeat:
                yield Label("Repeat", classes="dialog-label")
                yield Input(password=True, id="repeat")
            yield Label("", id="dialog-error", classes="dialog-error")
            yield Label("Enter: OK   Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#password", Input).focus()

    def _error(self, message: str) -> None:
        self.query_one("#dialog-error", Label).update(Text(safe_text(message)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        if self.repeat and event.input.id == "password":
            self.query_one("#repeat", Input).focus()
            return
        password = self.query_one("#password", Input).value
        if not password:
            self._error("The password is empty.")
            return
        if self.repeat and self.query_one("#repeat", Input).value != password:
            self._error("The passwords do not match.")
            self.query_one("#repeat", Input).value = ""
            return
        secret = password.encode()
        if self.verify is None:
            self.dismiss(secret)  # type: ignore[arg-type]
            return
        self.busy = True
        self._error("")
        self.query_one("#dialog-error", Label).update(Text("Checking…", style="italic"))
        self._check(secret)

    @work(thread=True, exclusive=True, group="password")
    def _check(self, secret: bytes) -> None:
        assert self.verify is not None
        try:
            result = self.verify(secret)
        except VaultError as e:
            self.app.call_from_thread(self._failed, str(e))
            return
        self.app.call_from_thread(self.dismiss, result)

    def _failed(self, message: str) -> None:
        self.busy = False
        self._error(message)
        box = self.query_one("#password", Input)
        box.value = ""
        box.focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a destination, a new name); Esc gives None.

    With `local`, the answer is a local path: Tab completes it (directories only for "dir"),
    Ctrl-O opens a directory browser, and the default text is not selected, so typing adds to
    it. Names that need escaping are shown escaped and given back as the real path.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "browse", "Browse", show=False),
    ]

    def __init__(
        self,
        title: str,
        prompt: str,
        value: str = "",
        placeholder: str = "",
        *,
        local: PathKind | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.value = value
        self.placeholder = placeholder
        self.local = local
        self.shown_paths = ShownPaths()
        if local is not None:
            self.value = self.shown_paths.show(value)
        elif has_unsafe_chars(value):
            # An input line would draw the control characters raw: the old name is shown
            # escaped as a hint, and a new one is typed from scratch.
            self.value, self.placeholder = "", quote_name(value)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(safe_text(self.title_text), classes="dialog-title", markup=False)
            yield Label(safe_text(self.prompt), classes="dialog-label", markup=False)
            if self.local is None:
                yield Input(self.value, placeholder=self.placeholder, id="answer")
                yield Label("Enter: OK   Esc: cancel", classes="dialog-hint")
                return
            yield CompletingInput(
                self.value,
                placeholder=self.placeholder,
                id="answer",
                select_on_focus=False,
                completer=self._complete,
            )
            yield Label("", id="candidates", classes="dialog-candidates")
            yield Label("Enter: OK   Tab: complete   Ctrl-O: browse   Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def _complete(self, before: str) -> tuple[str, list[str]]:
        assert self.local is not None
        replaced, found = complete_local(before, self.local, self.shown_paths)
        hint = "no match" if not found else candidates_hint(found) if len(found) > 1 else ""
        self.query_one("#candidates", Label).update(as_text(hint))
        return replaced, found

    def action_browse(self) -> None:
        if self.local is None:
            return
        box = self.query_one("#answer", Input)

        def picked(path: str | None) -> None:
            if path:
                box.value = self.shown_paths.show(path) + ("/" if os.path.isdir(path) and path != "/" else "")
                box.cursor_position = len(box.value)
            box.focus()

        self.app.push_screen(PathBrowser(self.shown_paths.real(box.value), self.local), picked)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        answer = event.value
        if self.local is not None and answer:
            answer = os.path.expanduser(self.shown_paths.real(answer))
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y/Enter on Yes confirm, n/Esc decline."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left,right,h,l", "switch", "Switch", show=False),
    ]

    def __init__(self, title: str, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(safe_text(self.title_text), classes="dialog-title", markup=False)
            yield Label(safe_text(self.question), classes="dialog-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(as_text(f"{self.yes} (y)"), id="yes", variant="error")
                yield Button(as_text(f"{self.no} (n)"), id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_switch(self) -> None:
        self.focus_next(Button)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers, each a button with its own key; Esc cancels (None).

    `choices` are (value, key, label) in button order; the dialog dismisses with the value.
    `default` is the value whose button has the focus, so Enter picks it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("left", "move(-1)", "Previous", show=False),  # letters are the answers' keys
        Binding("right", "move(1)", "Next", show=False),
    ]

    def __init__(
        self, title: str, question: str, choices: list[tuple[str, str, str]], default: str | None = None
    ) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.choices = choices
        self.default = default if default is not None else choices[0][0]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog choice-dialog"):
            yield Label(safe_text(self.title_text), classes="dialog-title", markup=False)
            yield Label(safe_text(self.question), classes="dialog-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                for value, key, label in self.choices:
                    yield Button(
                        as_text(f"{label} ({key})"),
                        id=f"choice-{value}",
                        variant="primary" if value == self.default else "default",
                    )
            yield Label("Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.default}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        for value, _key, _label in self.choices:
            if event.button.id == f"choice-{value}":
                self.dismiss(value)
                return

    def on_key(self, event: Any) -> None:
        for value, key, _label in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return

    def action_move(self, step: int) -> None:
        if step < 0:
            self.focus_previous(Button)
        else:
            self.focus_next(Button)

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP_FRAME_ROWS = 8  # the help dialog's border, padding, title and hint around its scrolled part


class HelpScreen(ModalScreen[None]):
    """Every key of the main screen, from its bindings, so the list cannot fall out of date.

    The intro and the keys scroll together in the part between the title and the hint, sized
    to the terminal so that the hint (how to close) stays in view even at 80×24.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1,f10", "close", "Close"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("space", "page(1)", "Page down", show=False),
    ]

    def __init__(self, keys: list[tuple[str, str]], intro: str) -> None:
        super().__init__()
        self.keys = keys
        self.intro = intro

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, description in self.keys:
            table.add_row(as_text(key, "bold"), as_text(description))
        with Vertical(classes="dialog help-dialog"):
            yield Label("vaultsh — keys", classes="dialog-title")
            with VerticalScroll(id="help-keys"):
                yield Static(as_text(self.intro), classes="dialog-detail")
                yield Static(table)
            yield Label("↑↓ PgUp PgDn scroll · Esc, q or ? closes this help", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#help-keys", VerticalScroll).focus()

    def on_resize(self, event: Any) -> None:
        # The dialog may take 90% of the height; the scrolled part gets what its frame leaves.
        room = max(3, event.size.height * 9 // 10 - HELP_FRAME_ROWS)
        self.query_one("#help-keys", VerticalScroll).styles.max_height = room

    def action_scroll(self, rows: int) -> None:
        self.query_one("#help-keys", VerticalScroll).scroll_relative(y=rows, animate=False)

    def action_page(self, direction: int) -> None:
        keys = self.query_one("#help-keys", VerticalScroll)
        keys.scroll_relative(y=direction * max(1, keys.size.height - 1), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


class KeyScreen(ModalScreen[str | None]):
    """Wait for one key (a bookmark's letter) while showing what each key stands for.

    Dismisses with the character typed, or None on Esc.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, rows: list[tuple[str, str]], hint: str) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows
        self.hint = hint

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, meaning in self.rows:
            table.add_row(as_text(key, "bold"), as_text(meaning))
        with Vertical(classes="dialog"):
            yield Label(as_text(self.title_text), classes="dialog-title")
            if self.rows:
                yield Static(table)
            yield Label(as_text(self.hint), classes="dialog-hint")

    def on_key(self, event: Any) -> None:
        if event.key != "escape" and event.is_printable and event.character:
            event.stop()
            self.dismiss(event.character)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SecretScreen(ModalScreen[None]):
    """Show a secret (the master key) until dismissed; nothing of it is logged."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, secret: str, advice: str) -> None:
        super().__init__()
        self.title_text = title
        self.secret = secret
        self.advice = advice

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(as_text(self.title_text), classes="dialog-title")
            yield Static(Text(group_lines(self.secret), style="bold"), id="secret", classes="secret")
            yield Static(as_text(self.advice), classes="dialog-detail")
            yield Label("Enter or Esc closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


def group_lines(secret: str, groups_per_line: int = 4) -> str:
    """A dash-grouped secret (the master key) in lines of whole groups: a group cut by the
    dialog's edge is easy to copy wrongly onto paper."""
    groups = secret.split("-")
    lines = ["-".join(groups[i : i + groups_per_line]) for i in range(0, len(groups), groups_per_line)]
    return "-\n".join(lines)


class TransferBar(Horizontal):
    """A label and progress bar for the running export or import; Esc cancels it."""

    def compose(self) -> ComposeResult:
        yield Label("", id="transfer-label")
        yield ProgressBar(id="transfer-progress", show_eta=True)
        yield Label("Esc cancels", id="transfer-hint")

    def start(self, label: str, total: int | None) -> None:
        self.query_one("#transfer-label", Label).update(Text(safe_text(label)))
        self.query_one(ProgressBar).update(total=total, progress=0)
        self.display = True

    def finish(self) -> None:
        self.display = False


def key_label(keys: str) -> str:
    """'f5,e' -> 'F5 / e' for the help screen."""
    names = []
    for key in keys.split(","):
        key = key.strip()
        special: dict[str, str] = {
            "question_mark": "?",
            "colon": ":",
            "slash": "/",
            "backspace": "Backspace",
            "enter": "Enter",
            "tab": "Tab",
            "escape": "Esc",
            "right": "→",
            "left": "←",
            "up": "↑",
            "down": "↓",
            "ctrl+r": "Ctrl-R",
            "pageup": "PgUp",
            "pagedown": "PgDn",
            "home": "Home",
            "end": "End",
            "space": "Space",
            "insert": "Insert",
            "asterisk": "*",
            "full_stop": ".",
            "apostrophe": "'",
        }
        if key in special:
            names.append(special[key])
        elif key.startswith("f") and key[1:].isdigit():
            names.append(key.upper())
        else:
            names.append(key)
    return " / ".join(names)


def describe_bindings(bindings: list[Any], tooltips: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(keys, description) rows from Binding objects, in declaration order.

    `tooltips` replaces the text of some actions (a mode in which a key does something else).
    """
    rows = []
    for b in bindings:
        if isinstance(b, Binding) and b.description:
            text = (tooltips or {}).get(b.action) or b.tooltip or b.description
            rows.append((key_label(b.key), text))
    return rows
