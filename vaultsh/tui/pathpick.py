"""Local paths in dialogs: Tab completion over the local file system and a small directory browser."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import groupby
from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from vaultsh.tui.safety import as_text, cut_middle
from vaultsh.vault.display import ansi_c_quote, has_unsafe_chars, is_unsafe_char

# What a dialog asks for: a directory (mountpoint, export destination) or any entry (import source).
PathKind = Literal["dir", "any"]
BROWSER_ROWS = 1000  # a bigger directory is cut in the browser (its list is slow to fill): Tab narrows
BROWSER_PATH_CELLS = 62  # the browser's current directory, cut in the middle to fit 80 columns


@dataclass(frozen=True)
class LocalEntry:
    """One entry of a local directory: its name as os.fsdecode gives it, and whether it is a
    directory (a symlink to one counts, as in a shell's completion)."""

    name: str
    is_dir: bool


def scan_local(directory: str) -> list[LocalEntry]:
    """The entries of a local directory; OSError when it cannot be listed (EACCES, gone, not a dir).

    Only the directory itself is opened: the type of an entry comes from its directory entry or
    a stat, never from opening it, so a FIFO or a device among the entries cannot block.
    """
    found: list[LocalEntry] = []
    try:
        with os.scandir(directory or ".") as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:  # a vanished entry
                    is_dir = False
                found.append(LocalEntry(entry.name, is_dir))
    except ValueError as e:  # a NUL in a typed path
        raise OSError(f"invalid path: {e}") from None
    return found


def list_local(directory: str) -> list[LocalEntry] | None:
    """`scan_local`, or None when the directory cannot be listed."""
    try:
        return scan_local(directory)
    except OSError:
        return None


def show_name(name: str) -> str:
    """A local name as an input line shows it: each run of characters a terminal could act on
    (or cannot show: undecodable bytes) in its escaped $'...' form, the rest as it is, so the
    name can still be completed from its first letters."""
    if not has_unsafe_chars(name):  # nearly every name: no per-character work
        return name
    return "".join(
        ansi_c_quote("".join(run)) if unsafe else "".join(run)
        for unsafe, run in groupby(name, is_unsafe_char)
    )


def show_path(real: str) -> str:
    """A local path as an input line shows it, name by name (`show_name`)."""
    return "/".join(show_name(part) for part in real.split("/"))


class ShownPaths:
    """The real local paths behind the escaped ones an input line holds.

    A name with an ESC or an invalid UTF-8 byte cannot stand raw in an input line (the terminal
    would act on it, or cannot show it), so completion and the browser write its escaped form
    (`show_path`) and remember here which real path that text stands for. Typed text that was
    never completed is taken as it is.
    """

    def __init__(self) -> None:
        self._real: dict[str, str] = {}

    def show(self, real: str) -> str:
        """`real` as the input line shows it, remembered so that `real` can turn it back."""
        shown = show_path(real)
        self.remember(shown, real)
        return shown

    def remember(self, shown: str, real: str) -> None:
        """Note that the input text `shown` stands for the local path `real`."""
        if shown != real:
            self._real[shown.rstrip("/")] = real.rstrip("/")

    def real(self, shown: str) -> str:
        """The real path of what the input line holds: the longest remembered shown prefix
        (a whole path or whole leading directories) turned back, the rest as typed."""
        best = ""
        for key in self._real:
            if len(key) > len(best) and (shown == key or shown.startswith(key + "/")):
                best = key
        return self._real[best] + shown[len(best) :] if best else shown


def complete_local(before: str, kind: PathKind, paths: ShownPaths) -> tuple[str, list[str]]:
    """Completer for a local path input: the whole text before the cursor is one path.

    Candidates are whole paths as the input shows them, directories with a trailing `/`; `~`
    and `~user` are expanded for the listing but kept in the text, as a shell does. Entries
    starting with `.` are offered only once the typed name starts with `.`. A directory that
    cannot be listed gives no candidates.
    """
    if before.startswith("~") and "/" not in before:
        home = os.path.expanduser(before)
        return before, [before + "/"] if home != before and os.path.isdir(home) else []
    leaf = before.rpartition("/")[2]
    typed_dir = before[: len(before) - len(leaf)]
    real_dir = paths.real(typed_dir)
    entries = list_local(os.path.expanduser(real_dir))
    if entries is None:
        return before, []
    found = [typed_dir + "../"] if leaf in (".", "..") else []
    for entry in entries:
        if (kind == "dir" and not entry.is_dir) or (entry.name.startswith(".") and not leaf.startswith(".")):
            continue
        name = show_name(entry.name)
        if name.startswith(leaf):
            shown = typed_dir + name
            paths.remember(shown, real_dir + entry.name)
            found.append(shown + ("/" if entry.is_dir else ""))
    return before, sorted(found)


def nearest_dir(path: str) -> str:
    """The directory a browser opened on `path` starts in: `path` itself if it is one, else the
    closest existing directory above it, else the working directory."""
    path = os.path.abspath(os.path.expanduser(path or "."))
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path if os.path.isdir(path) else os.getcwd()


@dataclass(frozen=True)
class BrowserRow:
    """A row of the browser: the current directory itself, its parent, or an entry in it."""

    role: Literal["here", "up", "dir", "file"]
    path: str


class PathBrowser(ModalScreen[str | None]):
    """A small local directory browser: Enter opens a directory (or picks a file), Backspace
    goes up, Space or Enter on `./` picks; dismisses with the real path chosen, None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back"),
        Binding("backspace,left", "up", "Up"),
        Binding("space", "choose", "Choose"),
        Binding("full_stop", "toggle_hidden", "Hidden"),
    ]

    def __init__(self, start: str, kind: PathKind) -> None:
        super().__init__()
        self.kind = kind
        self.current = nearest_dir(start)
        self.show_hidden = False
        self.rows: list[BrowserRow] = []

    def compose(self) -> ComposeResult:
        title = "Choose a directory" if self.kind == "dir" else "Choose a file or directory"
        with Vertical(classes="dialog", id="browser"):
            yield Label(title, classes="dialog-title")
            yield Label("", id="browser-path")
            yield OptionList(id="browser-list")
            yield Label("", id="browser-error", classes="dialog-error")
            yield Label("Enter open · Space choose · Bksp up · . hidden · Esc back", classes="dialog-hint")

    def on_mount(self) -> None:
        # Inline: the shared .dialog rule sizes dialogs to their content; the list takes what
        # an 80×24 terminal leaves once the title, path, error and hint lines are drawn.
        dialog = self.query_one("#browser", Vertical)
        dialog.styles.height = "90%"
        dialog.styles.width = 76
        dialog.styles.padding = (0, 1)
        self.query_one("#browser-error", Label).styles.margin = 0
        self.query_one("#browser-list", OptionList).styles.height = "1fr"
        # A start that cannot be listed (no permission) opens the nearest parent that can.
        where, problem = self.current, self._show(self.current)
        while problem is not None and os.path.dirname(where) != where:
            child, where = where, os.path.dirname(where)
            if self._show(where, highlight=child) is None:
                break
        self._error(problem or "")
        self.query_one("#browser-list", OptionList).focus()

    def _error(self, message: str) -> None:
        self.query_one("#browser-error", Label).update(as_text(message))

    def _show(self, directory: str, highlight: str | None = None) -> str | None:
        """List `directory`, the row of `highlight` under the cursor; when it cannot be listed,
        the previous listing stays and the reason is returned."""
        try:
            entries = scan_local(directory)
        except OSError as e:
            return f"cannot open {show_path(directory)}: {e.strerror or e}"
        self.current = directory
        hidden = [e for e in entries if e.name.startswith(".")]
        shown = [e for e in entries if self.show_hidden or not e.name.startswith(".")]
        shown = [e for e in shown if e.is_dir or self.kind == "any"]
        shown.sort(key=lambda e: (not e.is_dir, e.name.casefold(), e.name))
        rows = [BrowserRow("here", directory)]
        if os.path.dirname(directory) != directory:
            rows.append(BrowserRow("up", os.path.dirname(directory)))
        for entry in shown[:BROWSER_ROWS]:
            rows.append(BrowserRow("dir" if entry.is_dir else "file", os.path.join(directory, entry.name)))
        self.rows = rows
        options = [Option(self._label(row)) for row in rows]
        if len(shown) > BROWSER_ROWS:
            options.append(
                Option(
                    Text(f"… {len(shown) - BROWSER_ROWS} more: type a name's start in the dialog, then Tab"),
                    disabled=True,
                )
            )
        listing = self.query_one("#browser-list", OptionList)
        listing.clear_options()
        listing.add_options(options)
        target = next((i for i, row in enumerate(rows) if row.path == highlight), 0)
        listing.highlighted = target
        where = cut_middle(show_path(directory), BROWSER_PATH_CELLS)
        note = f"   ({len(hidden)} hidden)" if hidden and not self.show_hidden else ""
        self.query_one("#browser-path", Label).update(as_text(where + note, "bold"))
        return None

    def _go(self, directory: str, highlight: str | None = None) -> None:
        self._error(self._show(directory, highlight) or "")

    def _label(self, row: BrowserRow) -> Text:
        if row.role == "here":
            return Text("./   (choose this directory)")
        if row.role == "up":
            return Text("../")
        name = show_name(os.path.basename(row.path))
        return as_text(name + "/") if row.role == "dir" else as_text(name)

    def _highlighted(self) -> BrowserRow | None:
        index = self.query_one("#browser-list", OptionList).highlighted
        return self.rows[index] if index is not None and index < len(self.rows) else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        row = self.rows[event.option_index] if event.option_index < len(self.rows) else None
        if row is None:
            return
        if row.role == "up":
            self.action_up()
        elif row.role == "dir":
            self._go(row.path)
        else:
            self.dismiss(row.path)

    def action_choose(self) -> None:
        row = self._highlighted()
        if row is not None and row.role != "up":
            self.dismiss(row.path)

    def action_up(self) -> None:
        parent = os.path.dirname(self.current)
        if parent != self.current:
            self._go(parent, highlight=self.current)

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        row = self._highlighted()
        self._go(self.current, highlight=row.path if row is not None else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
